// SPDX-License-Identifier: GPL-2.0
//! `make bench`: the measurements taken in the guest (`contigmem-bench`) and the report drawn
//! from them on the host (`contigmem-report`). [`schema`] is the JSON between the two;
//! [`report`] reads it and writes the markdown report and its plots.

pub mod report;
pub mod schema;
