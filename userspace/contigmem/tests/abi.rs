// SPDX-License-Identifier: GPL-2.0

//! The C header and the Rust ABI agree: compiles a C program against
//! `include/uapi/linux/contigmem.h`, which prints the size, offset and signedness of every field
//! of every structure and the value of every constant, and compares each with `contigmem::abi`
//! (the very `rust/abi.rs` the kernel module compiles).
//!
//! A second test mutates a copy of the header and checks that the comparison notices, so this
//! test can fail.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::mem::{offset_of, size_of, size_of_val};
use std::path::{Path, PathBuf};
use std::process::Command;

use contigmem::abi;

/// Signedness of a field type, and whether it is an array (the C side must index it).
trait Field {
    const SIGNED: bool;
    const ARRAY: bool = false;
}

impl Field for u32 {
    const SIGNED: bool = false;
}

impl Field for u64 {
    const SIGNED: bool = false;
}

impl Field for i32 {
    const SIGNED: bool = true;
}

impl<T: Field, const N: usize> Field for [T; N] {
    const SIGNED: bool = T::SIGNED;
    const ARRAY: bool = true;
}

fn signed<T: Field>(_: &T) -> bool {
    T::SIGNED
}

fn array<T: Field>(_: &T) -> bool {
    T::ARRAY
}

/// Facts about the ABI, keyed by name: the C program prints the same keys.
#[derive(Default)]
struct Facts {
    c: String,
    rust: BTreeMap<String, u64>,
}

impl Facts {
    fn add(&mut self, key: String, c_expr: String, rust: u64) {
        writeln!(self.c, "\tP(\"{key}\", {c_expr});").expect("writing to a String");
        self.rust.insert(key, rust);
    }
}

/// Lists each structure with every field: `"c_name" => RustType { field, ... }`.
macro_rules! structs {
    ($facts:ident, $($cname:literal => $ty:ty { $($field:ident),+ $(,)? }),+ $(,)?) => {$(
        let value = <$ty>::default();
        let mut fields_total = 0;
        $facts.add(format!("sizeof {}", $cname), format!("sizeof(struct {})", $cname), size_of::<$ty>() as u64);
        $(
            let name = format!("{}.{}", $cname, stringify!($field));
            let access = format!("((struct {} *)0)->{}", $cname, stringify!($field));
            let element = if array(&value.$field) { format!("{access}[0]") } else { access.clone() };
            $facts.add(
                format!("offsetof {name}"),
                format!("offsetof(struct {}, {})", $cname, stringify!($field)),
                offset_of!($ty, $field) as u64,
            );
            $facts.add(format!("sizeof {name}"), format!("sizeof({access})"), size_of_val(&value.$field) as u64);
            $facts.add(
                format!("signed {name}"),
                format!("((__typeof__({element}))0 - 1 < 0)"),
                u64::from(signed(&value.$field)),
            );
            fields_total += size_of_val(&value.$field);
        )+
        // No implicit padding: the fields fill the structure (the C side is checked through the
        // per-field sizes, which must equal these).
        assert_eq!(
            fields_total,
            size_of::<$ty>(),
            "{}: the fields listed here do not fill the Rust structure: padding, or a field \
             missing from this test's list",
            $cname
        );
    )+};
}

/// Lists constants: `C_NAME => rust_value`.
macro_rules! constants {
    ($facts:ident, $($cname:ident => $value:expr),+ $(,)?) => {$(
        $facts.add(
            format!("const {}", stringify!($cname)),
            format!("(unsigned long long)({})", stringify!($cname)),
            u64::from($value),
        );
    )+};
}

fn facts() -> Facts {
    let mut f = Facts::default();
    structs!(f,
        "contigmem_version" => abi::Version {
            abi_version, kinds, page_size, max_size, max_total_bytes, max_file_bytes,
            live_bytes, live_buffers, alloc_flags, cache_modes, reserved,
        },
        "contigmem_alloc" => abi::Alloc {
            size, kind, flags, node, cache, align, phys_limit, reserved1, id, mmap_offset,
            reserved_size, phys_addr, alloc_ns, reserved2,
        },
        "contigmem_free" => abi::Free { id, reserved },
        "contigmem_info" => abi::Info {
            id, kind, flags, size, mmap_offset, phys_addr, segments, mappings, node,
            cache, off_node_pages, dmabufs, reserved,
        },
        "contigmem_export" => abi::Export { id, fd_flags, fd, reserved },
        "contigmem_sync" => abi::Sync { id, offset, length, flags, reserved0 },
    );
    constants!(f,
        CONTIGMEM_ABI_VERSION => abi::ABI_VERSION,
        CONTIGMEM_KIND_KMALLOC => abi::KIND_KMALLOC,
        CONTIGMEM_KIND_KZALLOC => abi::KIND_KZALLOC,
        CONTIGMEM_KIND_VMALLOC => abi::KIND_VMALLOC,
        CONTIGMEM_KIND_PAGES => abi::KIND_PAGES,
        CONTIGMEM_KIND_HUGE => abi::KIND_HUGE,
        CONTIGMEM_KIND_COUNT => abi::KIND_COUNT,
        CONTIGMEM_KINDS_MAX => abi::KINDS_MAX as u64,
        CONTIGMEM_ALLOC_UNINIT => abi::ALLOC_UNINIT,
        CONTIGMEM_ALLOC_HUGE_MAP => abi::ALLOC_HUGE_MAP,
        CONTIGMEM_ALLOC_STRICT_NODE => abi::ALLOC_STRICT_NODE,
        CONTIGMEM_ALLOC_FLAGS => abi::ALLOC_FLAGS,
        CONTIGMEM_INFO_CONTIGUOUS => abi::INFO_CONTIGUOUS,
        CONTIGMEM_INFO_UNINIT => abi::INFO_UNINIT,
        CONTIGMEM_INFO_HUGE_MAP => abi::INFO_HUGE_MAP,
        CONTIGMEM_INFO_PINNABLE => abi::INFO_PINNABLE,
        CONTIGMEM_INFO_STRICT_NODE => abi::INFO_STRICT_NODE,
        CONTIGMEM_IOC_MAGIC => abi::IOC_MAGIC,
        CONTIGMEM_IOC_VERSION => abi::IOC_VERSION,
        CONTIGMEM_IOC_ALLOC => abi::IOC_ALLOC,
        CONTIGMEM_IOC_FREE => abi::IOC_FREE,
        CONTIGMEM_IOC_INFO => abi::IOC_INFO,
        CONTIGMEM_IOC_EXPORT => abi::IOC_EXPORT,
        CONTIGMEM_IOC_SYNC => abi::IOC_SYNC,
        CONTIGMEM_CACHE_WB => abi::CACHE_WB,
        CONTIGMEM_CACHE_WC => abi::CACHE_WC,
        CONTIGMEM_CACHE_UC => abi::CACHE_UC,
        CONTIGMEM_CACHE_COUNT => abi::CACHE_COUNT,
        CONTIGMEM_SYNC_READ => abi::SYNC_READ,
        CONTIGMEM_SYNC_WRITE => abi::SYNC_WRITE,
        CONTIGMEM_SYNC_RW => abi::SYNC_RW,
        CONTIGMEM_SYNC_START => abi::SYNC_START,
        CONTIGMEM_SYNC_END => abi::SYNC_END,
        CONTIGMEM_SYNC_FLAGS => abi::SYNC_FLAGS,
    );
    f
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).expect("creating the scratch directory");
    dir
}

/// Compiles and runs the C program against the header under `include`, returns what it printed.
fn c_facts(include: &Path, c_body: &str, work: &Path) -> BTreeMap<String, u64> {
    let source = work.join("abi.c");
    let binary = work.join("abi");
    let program = format!(
        "#include <stddef.h>\n#include <stdio.h>\n#include <linux/contigmem.h>\n\n\
         #define P(key, value) printf(\"%s=%llu\\n\", key, (unsigned long long)(value))\n\n\
         int main(void)\n{{\n{c_body}\treturn 0;\n}}\n"
    );
    std::fs::write(&source, program).expect("writing the C program");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-std=gnu11", "-Wall", "-Werror", "-I"])
        .arg(include.join("uapi"))
        .arg("-I")
        .arg(include)
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .output()
        .unwrap_or_else(|e| panic!("running {cc}: {e} (install a C compiler and linux-libc-dev)"));
    assert!(
        out.status.success(),
        "{cc} failed on {}:\n{}",
        source.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(&binary)
        .output()
        .expect("running the C program");
    assert!(out.status.success(), "the C program failed");
    String::from_utf8(out.stdout)
        .expect("the C program prints ASCII")
        .lines()
        .map(|line| {
            let (key, value) = line.split_once('=').expect("key=value lines");
            (key.to_string(), value.parse().expect("decimal values"))
        })
        .collect()
}

/// Every fact on which C and Rust differ, one line each.
fn differences(include: &Path, work: &Path) -> Vec<String> {
    let facts = facts();
    let c = c_facts(include, &facts.c, work);
    let mut diffs: Vec<String> = facts
        .rust
        .iter()
        .filter(|(key, rust)| c.get(*key) != Some(rust))
        .map(|(key, rust)| format!("{key}: C says {:?}, Rust says {rust}", c.get(key)))
        .collect();
    diffs.extend(
        c.keys()
            .filter(|k| !facts.rust.contains_key(*k))
            .map(|k| format!("{k}: C only")),
    );
    diffs
}

#[test]
fn c_header_and_rust_abi_agree() {
    let diffs = differences(&repo().join("include"), &scratch("abi"));
    assert!(
        diffs.is_empty(),
        "the C header and rust/abi.rs differ:\n{}",
        diffs.join("\n")
    );
}

#[test]
fn a_changed_header_is_noticed() {
    let header = std::fs::read_to_string(repo().join("include/uapi/linux/contigmem.h"))
        .expect("reading the header");
    let mutations = [
        (
            "__u32 flags;\t\t/* in:",
            "__u64 flags;\t\t/* in:",
            "offsetof contigmem_alloc.node",
        ),
        (
            "__s32 node;\t\t/* out:",
            "__u32 node;\t\t/* out:",
            "signed contigmem_info.node",
        ),
        (
            "0x12, struct contigmem_free",
            "0x14, struct contigmem_free",
            "const CONTIGMEM_IOC_FREE",
        ),
        (
            "__u64 off_node_pages;",
            "__u32 off_node_pages;",
            "sizeof contigmem_info",
        ),
        (
            "CONTIGMEM_ALLOC_STRICT_NODE\t(1U << 2)",
            "CONTIGMEM_ALLOC_STRICT_NODE\t(1U << 3)",
            "const CONTIGMEM_ALLOC_STRICT_NODE",
        ),
        (
            "CONTIGMEM_KIND_HUGE = 4",
            "CONTIGMEM_KIND_HUGE = 6",
            "const CONTIGMEM_KIND_HUGE",
        ),
    ];
    for (i, (from, to, expected)) in mutations.into_iter().enumerate() {
        assert!(
            header.contains(from),
            "mutation {i}: the header no longer contains {from:?}"
        );
        let work = scratch(&format!("abi-mutated-{i}"));
        let include = work.join("include");
        std::fs::create_dir_all(include.join("uapi/linux")).expect("creating the copy");
        std::fs::write(
            include.join("uapi/linux/contigmem.h"),
            header.replacen(from, to, 1),
        )
        .expect("writing the mutated header");
        let diffs = differences(&include, &work);
        assert!(
            diffs.iter().any(|d| d.starts_with(expected)),
            "mutation {i} ({from:?} -> {to:?}) went unnoticed; expected a difference in \
             {expected}, saw {diffs:?}"
        );
    }
}
