/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * contigmem: memory from each of the kernel's allocators, mapped to userspace through
 * /dev/contigmem.
 *
 * Every structure is fixed-size, 64-bit aligned and has no implicit padding. Fields marked "in"
 * are read by the kernel, "out" written by it. Reserved fields and unknown flags must be zero and
 * unknown kinds are rejected (EINVAL), so the ABI can grow. The Rust module mirrors this file in
 * rust/abi.rs; a test checks that sizes and offsets agree.
 *
 * Use:
 *	struct contigmem_alloc a = { .size = 1 << 20, .kind = CONTIGMEM_KIND_PAGES, .node = -1 };
 *	ioctl(fd, CONTIGMEM_IOC_ALLOC, &a);
 *	p = mmap(NULL, a.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, a.mmap_offset);
 *	...
 *	munmap(p, a.size);
 *	ioctl(fd, CONTIGMEM_IOC_FREE, &(struct contigmem_free){ .id = a.id });
 */
#ifndef _UAPI_LINUX_CONTIGMEM_H
#define _UAPI_LINUX_CONTIGMEM_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define CONTIGMEM_ABI_VERSION	1

/* Back-ends: which kernel allocator a buffer comes from. */
enum contigmem_kind {
	CONTIGMEM_KIND_KMALLOC = 0,	/* kmalloc: contiguous, up to KMALLOC_MAX_SIZE */
	CONTIGMEM_KIND_KZALLOC = 1,	/* kzalloc: as kmalloc, zeroed by the allocator */
	CONTIGMEM_KIND_VMALLOC = 2,	/* vmalloc: virtually contiguous only */
	CONTIGMEM_KIND_PAGES = 3,	/* alloc_pages(order): contiguous, naturally aligned */
	CONTIGMEM_KIND_HUGE = 4,	/* alloc_contig_pages: contiguous, 1 GiB and more */
	CONTIGMEM_KIND_COUNT = 5,
};

#define CONTIGMEM_KINDS_MAX	8	/* length of contigmem_version.max_size */

/* contigmem_alloc.flags */
#define CONTIGMEM_ALLOC_UNINIT	(1U << 0)	/* do not zero: CAP_SYS_ADMIN only (EPERM) */
/*
 * PAGES and HUGE only: map on fault with PFN entries, PMD (2 MiB) and PUD (1 GiB) where the
 * window and the memory are aligned, 4 KiB PTEs elsewhere. Such mappings are PFN maps: the only
 * way to PUD entries and huge PAGES entries, but get_user_pages (O_DIRECT, io_uring fixed
 * buffers) fails on them with EFAULT and /proc/pid/pagemap does not show them. Without it a HUGE
 * buffer is made of 2 MiB folios mapped on fault by refcounted PMDs (PTEs where a window leaves
 * no room; PTEs only when transparent huge pages are "never"), and the other kinds' pages are
 * all mapped at mmap time; both work with get_user_pages.
 */
#define CONTIGMEM_ALLOC_HUGE_MAP	(1U << 1)
/*
 * Allocate on contigmem_alloc.node only (a node >= 0): ENOMEM rather than memory of another node.
 * Without it the node is a preference, and -1 leaves the choice to the calling task's memory
 * policy (by default its local node; HUGE: the local node of the calling CPU); either falls back
 * to other nodes. Modules without this flag refuse it with EINVAL;
 * contigmem_version.alloc_flags lists the flags a module knows.
 */
#define CONTIGMEM_ALLOC_STRICT_NODE	(1U << 2)
#define CONTIGMEM_ALLOC_FLAGS	(CONTIGMEM_ALLOC_UNINIT | CONTIGMEM_ALLOC_HUGE_MAP | \
				 CONTIGMEM_ALLOC_STRICT_NODE)

/*
 * Caching modes (contigmem_alloc.cache, contigmem_info.cache). PAGES and HUGE only (EINVAL for
 * the other kinds: slab pages are shared with other objects, and a vmalloc buffer's own kernel
 * alias would keep write-back). On x86 the kernel's direct-map alias of the pages takes the same
 * attribute for the buffer's life (set_memory_wc/set_memory_uc, back to write-back before the
 * pages are freed), so every mapping of a page agrees under PAT: the user mappings, the
 * dma-buf's mappings and vmap, and read()/write(). Such buffers are mapped as PFN maps, as with
 * CONTIGMEM_ALLOC_HUGE_MAP (PMD and PUD entries where aligned; get_user_pages cannot pin them,
 * so no other kernel code maps them write-back), and need a file opened with CAP_SYS_ADMIN and
 * a caller with it (EPERM): each splits the kernel's direct map into 4 KiB pages for good. As
 * PFN maps, their mappings refuse MADV_DONTNEED (EINVAL). A hypervisor that maps a buffer into
 * a guest (KVM, through a VMM's mmap) uses its own memory type for it, write-back for RAM:
 * do not give WC or UC buffers to one.
 * contigmem_version.cache_modes has bit
 * (1 << mode) set for each mode the running kernel offers (write-back only without PAT; the
 * others get EOPNOTSUPP there).
 */
enum contigmem_cache {
	CONTIGMEM_CACHE_WB = 0,		/* write-back: normal cached memory (the default) */
	CONTIGMEM_CACHE_WC = 1,		/* write-combining: uncached, writes merged (PAT WC) */
	CONTIGMEM_CACHE_UC = 2,		/* uncached (PAT UC-) */
	CONTIGMEM_CACHE_COUNT = 3,
};

/* contigmem_info.flags */
#define CONTIGMEM_INFO_CONTIGUOUS	(1U << 0)	/* physically contiguous */
#define CONTIGMEM_INFO_UNINIT		(1U << 1)	/* allocated with CONTIGMEM_ALLOC_UNINIT */
#define CONTIGMEM_INFO_HUGE_MAP		(1U << 2)	/* allocated with CONTIGMEM_ALLOC_HUGE_MAP */
#define CONTIGMEM_INFO_PINNABLE		(1U << 3)	/* mappings work with get_user_pages */
#define CONTIGMEM_INFO_STRICT_NODE	(1U << 4)	/* allocated with CONTIGMEM_ALLOC_STRICT_NODE */

struct contigmem_version {
	__u32 abi_version;		/* out: CONTIGMEM_ABI_VERSION */
	__u32 kinds;			/* out: bit (1 << kind) set for each supported kind */
	__u64 page_size;		/* out: PAGE_SIZE */
	__u64 max_size[CONTIGMEM_KINDS_MAX];	/* out: largest size per kind, in bytes */
	__u64 max_total_bytes;		/* out: the global cap on live bytes */
	__u64 max_file_bytes;		/* out: the cap on live bytes per open file */
	__u64 live_bytes;		/* out: bytes held by all buffers, freed-but-mapped included */
	__u64 live_buffers;		/* out: buffers whose memory is still held */
	__u32 alloc_flags;		/* out: the CONTIGMEM_ALLOC_* flags this module knows */
	__u32 cache_modes;		/* out: bit (1 << mode) for each enum contigmem_cache offered */
	__u64 reserved[1];		/* out: zero */
};

struct contigmem_alloc {
	__u64 size;		/* in: bytes, rounded up to whole pages */
	__u32 kind;		/* in: enum contigmem_kind */
	__u32 flags;		/* in: CONTIGMEM_ALLOC_* */
	__s32 node;		/* in: NUMA node, or -1: the task's policy (see STRICT_NODE) */
	__u32 cache;		/* in: enum contigmem_cache (0: write-back) */
	__u64 align;		/* in: 0, or a power of two >= page size (PAGES, HUGE only) */
	/*
	 * in: 0, or a physical address the whole buffer must lie below, for a device that cannot
	 * reach higher (1ULL << 32 for a 32-bit DMA engine). VMALLOC, PAGES and HUGE (EINVAL for
	 * the slab kinds); ENOMEM when nothing below it fits. Modules without it refuse a non-zero
	 * value with EINVAL.
	 */
	__u64 phys_limit;
	__u64 reserved1;	/* in: zero */
	__u64 id;		/* out: the buffer's id, for FREE and INFO */
	__u64 mmap_offset;	/* out: the mmap offset (an opaque cookie) of the buffer */
	__u64 reserved_size;	/* out: the bytes actually reserved */
	__u64 phys_addr;	/* out: physical address (0 without CAP_SYS_ADMIN) */
	__u64 alloc_ns;		/* out: time the allocation (and zeroing) took */
	__u64 reserved2[2];	/* out: zero */
};

struct contigmem_free {
	__u64 id;		/* in: a buffer of this file */
	__u64 reserved;		/* in: zero */
};

struct contigmem_info {
	__u64 id;		/* in: a buffer of this file */
	__u32 kind;		/* out: enum contigmem_kind */
	__u32 flags;		/* out: CONTIGMEM_INFO_* */
	__u64 size;		/* out: bytes reserved */
	__u64 mmap_offset;	/* out: as returned by ALLOC */
	__u64 phys_addr;	/* out: physical address of the first byte (0 without CAP_SYS_ADMIN) */
	__u64 segments;		/* out: number of physically contiguous runs */
	__u64 mappings;		/* out: number of live user mappings (VMAs) */
	__s32 node;		/* out: NUMA node of the first page */
	__u32 cache;		/* out: enum contigmem_cache */
	__u64 off_node_pages;	/* out: pages of the buffer not on that node (0: all on it) */
	__u64 dmabufs;		/* out: live dma-bufs exported from it (CONTIGMEM_IOC_EXPORT) */
	__u64 reserved[1];	/* out: zero */
};

/*
 * CONTIGMEM_IOC_EXPORT: a dma-buf of the whole buffer, as a new file descriptor. The dma-buf
 * holds the buffer's memory for as long as it lives, as a mapping does (FREE and close() of
 * /dev/contigmem do not end it), and needs no access to /dev/contigmem: it can be mmapped, passed
 * to another process over a Unix socket and imported by drivers (V4L2, DRM, RDMA). Its importers
 * get one scatterlist segment per physically contiguous run, cut at the importing device's DMA
 * segment limits (dma_get_max_seg_size, dma_get_seg_boundary, 2 GiB at most). Every kind can be
 * exported. A dma-buf that can be written needs a file opened for writing (EACCES); the exporter
 * name in /sys/kernel/debug/dma_buf/bufinfo is "contigmem".
 */
struct contigmem_export {
	__u64 id;		/* in: a buffer of this file */
	__u32 fd_flags;		/* in: O_CLOEXEC, and O_RDONLY, O_WRONLY or O_RDWR (<fcntl.h>) */
	__s32 fd;		/* out: the dma-buf's file descriptor */
	__u64 reserved[2];	/* in: zero */
};

/*
 * CONTIGMEM_IOC_SYNC: the bracket of a CPU access to bytes [offset, offset + length) of a buffer
 * (length 0: to its end), with the flags and meaning of DMA_BUF_IOCTL_SYNC (<linux/dma-buf.h>):
 * CONTIGMEM_SYNC_START before the CPU reads or writes what a device wrote, CONTIGMEM_SYNC_END
 * after, before a device uses it, with CONTIGMEM_SYNC_READ and/or CONTIGMEM_SYNC_WRITE for what
 * the CPU does. The range must lie inside the buffer; every device mapping of the buffer's
 * dma-bufs is synced whole (dma_sync_sgtable_for_cpu/for_device, as the DMA API syncs a mapped
 * scatterlist: cache maintenance where the device is not coherent, the copy where swiotlb
 * bounced), then a full memory barrier is issued (on x86, mfence: write-combining buffers
 * drained). On cache-coherent x86 with no bouncing that barrier is all it does. A dma-buf's own
 * DMA_BUF_IOCTL_SYNC syncs the same device mappings.
 */
#define CONTIGMEM_SYNC_READ	(1U << 0)
#define CONTIGMEM_SYNC_WRITE	(1U << 1)
#define CONTIGMEM_SYNC_RW	(CONTIGMEM_SYNC_READ | CONTIGMEM_SYNC_WRITE)
#define CONTIGMEM_SYNC_START	0U
#define CONTIGMEM_SYNC_END	(1U << 2)
#define CONTIGMEM_SYNC_FLAGS	(CONTIGMEM_SYNC_RW | CONTIGMEM_SYNC_END)

struct contigmem_sync {
	__u64 id;		/* in: a buffer of this file */
	__u64 offset;		/* in: first byte */
	__u64 length;		/* in: bytes, or 0: to the end of the buffer */
	__u32 flags;		/* in: CONTIGMEM_SYNC_*: READ and/or WRITE, START or END */
	__u32 reserved0;	/* in: zero */
};

#define CONTIGMEM_IOC_MAGIC	0xCD
#define CONTIGMEM_IOC_VERSION	_IOR(CONTIGMEM_IOC_MAGIC, 0x10, struct contigmem_version)
#define CONTIGMEM_IOC_ALLOC	_IOWR(CONTIGMEM_IOC_MAGIC, 0x11, struct contigmem_alloc)
#define CONTIGMEM_IOC_FREE	_IOW(CONTIGMEM_IOC_MAGIC, 0x12, struct contigmem_free)
#define CONTIGMEM_IOC_INFO	_IOWR(CONTIGMEM_IOC_MAGIC, 0x13, struct contigmem_info)
#define CONTIGMEM_IOC_EXPORT	_IOWR(CONTIGMEM_IOC_MAGIC, 0x14, struct contigmem_export)
#define CONTIGMEM_IOC_SYNC	_IOW(CONTIGMEM_IOC_MAGIC, 0x15, struct contigmem_sync)

#endif /* _UAPI_LINUX_CONTIGMEM_H */
