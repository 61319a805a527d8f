// SPDX-License-Identifier: GPL-2.0

//! Why a command failed: a library error, and what the command knows of its cause when that
//! says more than the library's hint (which sees the errno, not the command's arguments).

use std::fmt;

use contigmem::{errno_name, Errno, Error};

/// A failed command's error.
#[derive(Debug)]
pub struct Failure {
    pub error: Error,
    /// The cause, in terms of the command's arguments; replaces the library's hint.
    pub why: Option<String>,
}

impl Failure {
    /// `error`, explained by `why`.
    pub fn explained(error: Error, why: String) -> Self {
        Self {
            error,
            why: Some(why),
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self { error, why: None }
    }
}

/// `EINVAL`, and the names the library's table lacks; the error's text otherwise.
fn errno_text(errno: Errno) -> String {
    match errno_name(errno) {
        Some(name) => name.into(),
        None if errno == Errno::OPNOTSUPP => "EOPNOTSUPP".into(),
        None => errno.to_string(),
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.error, &self.why) {
            (Error::Os { op, errno }, Some(why)) => {
                write!(f, "{op}: {}: {why}", errno_text(*errno))
            }
            (error, Some(why)) => write!(f, "{error}: {why}"),
            (error, None) => write!(f, "{error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_explanation_replaces_the_hint() {
        let inval = Error::Os {
            op: "ALLOC",
            errno: Errno::INVAL,
        };
        let plain = Failure::from(inval.clone()).to_string();
        assert_eq!(plain, inval.to_string());
        assert_eq!(
            Failure::explained(inval, "--cache wc: why".into()).to_string(),
            "ALLOC: EINVAL: --cache wc: why"
        );
        let unsupported = Error::Os {
            op: "ALLOC",
            errno: Errno::OPNOTSUPP,
        };
        assert_eq!(
            Failure::explained(unsupported, "no PAT".into()).to_string(),
            "ALLOC: EOPNOTSUPP: no PAT"
        );
    }
}
