// SPDX-License-Identifier: GPL-2.0

//! `contigmem ls`: every buffer whose memory is held, by any process, from debugfs (root).

use contigmem::debugfs::{self, BufferEntry};
use contigmem::{format_size, Error};

use crate::table::{yes_no, Table};
use crate::Output;

pub fn run(out: Output) -> Result<(), Error> {
    let entries = debugfs::buffers()?;
    if out.json {
        out.print_json(&entries);
    } else if entries.is_empty() {
        println!("no buffers held");
    } else {
        print!("{}", table(&entries));
    }
    Ok(())
}

/// The human-readable table of `entries`.
fn table(entries: &[BufferEntry]) -> Table {
    let mut table = Table::new(&[
        "ID", "PID", "KIND", "SIZE", "CONTIG", "SEGS", "MAPS", "NODE", "OFF NODE", "PHYS",
    ]);
    for e in entries {
        table.row(vec![
            e.id.to_string(),
            e.pid.to_string(),
            e.kind.to_string(),
            format_size(e.size),
            yes_no(e.contiguous).into(),
            e.segments.to_string(),
            e.mappings.to_string(),
            e.node.to_string(),
            e.off_node.to_string(),
            format!("{:#x}", e.phys),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_buffers_in_a_table() {
        let entries = debugfs::buffers_from_str(
            "id pid kind size contiguous segments mappings node off_node phys\n\
             7 123 huge 67108864 1 1 2 0 0 0x108000000\n\
             8 123 vmalloc 2640740352 0 644712 1 0 3 0x4a2c000\n\
             12 4567 kmalloc 4096 1 1 0 1 0 0x3f1b2000\n",
        )
        .expect("valid buffers");
        assert_eq!(
            table(&entries).to_string(),
            "\
ID  PID   KIND     SIZE   CONTIG  SEGS    MAPS  NODE  OFF NODE  PHYS
7   123   huge     64M    yes     1       2     0     0         0x108000000
8   123   vmalloc  2.46G  no      644712  1     0     3         0x4a2c000
12  4567  kmalloc  4K     yes     1       0     1     0         0x3f1b2000
"
        );
    }
}
