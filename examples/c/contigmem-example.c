// SPDX-License-Identifier: GPL-2.0
/*
 * contigmem-example: the whole ABI from C, with only <linux/contigmem.h> and libc.
 *
 * Opens /dev/contigmem, checks the ABI version, allocates a 2 MiB buffer of high-order pages
 * (write-combining where the kernel offers it), maps it, writes a pattern to its first bytes and
 * to every page, reads the pattern back, exports the buffer as a dma-buf, checks the buffer's
 * INFO, maps the dma-buf and checks that it shows the same bytes, writes through it inside
 * DMA_BUF_IOCTL_SYNC, reads that write back through /dev/contigmem inside CONTIGMEM_IOC_SYNC,
 * then unmaps, closes and frees everything. Prints each step; on any failure it says which step
 * failed and why, and exits 1.
 *
 * Build: cc -static -O2 -Wall -Wextra -Werror -I include/uapi examples/c/contigmem-example.c
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/contigmem.h>
#include <linux/dma-buf.h>

#define DEVICE		"/dev/contigmem"
#define BUFFER_SIZE	(2UL << 20)
#define HEAD_BYTES	4096UL

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "contigmem-example: error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static const char *const cache_names[CONTIGMEM_CACHE_COUNT] = { "wb", "wc", "uc" };

/* The byte the pattern puts at offset @off: differs between neighbouring bytes and pages. */
static uint8_t pattern(size_t off)
{
	return (uint8_t)(off ^ (off >> 12) ^ 0xa5);
}

int main(void)
{
	struct contigmem_version ver = { 0 };
	struct contigmem_alloc alloc = {
		.size = BUFFER_SIZE,
		.kind = CONTIGMEM_KIND_PAGES,
		.node = -1,
	};
	struct contigmem_info info = { 0 };
	struct contigmem_export exp = { 0 };
	struct contigmem_sync sync = { 0 };
	struct dma_buf_sync dsync = { 0 };
	struct contigmem_free req = { 0 };
	size_t page, off;
	uint8_t *p, *q, mark;
	off_t dmabuf_size;
	int fd, ret;

	fd = open(DEVICE, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die("open %s: %s (is the module loaded? insmod contigmem.ko)", DEVICE,
		    strerror(errno));

	if (ioctl(fd, CONTIGMEM_IOC_VERSION, &ver) < 0)
		die("CONTIGMEM_IOC_VERSION: %s", strerror(errno));
	if (ver.abi_version != CONTIGMEM_ABI_VERSION)
		die("ABI version %u, this program speaks %u", ver.abi_version,
		    CONTIGMEM_ABI_VERSION);
	if (!(ver.kinds & (1U << CONTIGMEM_KIND_PAGES)))
		die("the module does not offer kind pages (kinds %#x)", ver.kinds);
	page = ver.page_size;
	if (page == 0 || BUFFER_SIZE % page)
		die("unexpected page size %zu", page);
	printf("version: ABI %u, page size %zu, kinds %#x, cache modes %#x\n", ver.abi_version,
	       page, ver.kinds, ver.cache_modes);

	/*
	 * Write-combining (x86 PAT) where the kernel offers it: pages and huge buffers take it, for
	 * a caller with CAP_SYS_ADMIN (EPERM otherwise: then write-back).
	 */
	if (ver.cache_modes & (1U << CONTIGMEM_CACHE_WC))
		alloc.cache = CONTIGMEM_CACHE_WC;

	ret = ioctl(fd, CONTIGMEM_IOC_ALLOC, &alloc);
	if (ret < 0 && errno == EPERM && alloc.cache != CONTIGMEM_CACHE_WB) {
		printf("alloc: cache %s needs CAP_SYS_ADMIN (EPERM); write-back instead\n",
		       cache_names[alloc.cache]);
		alloc.cache = CONTIGMEM_CACHE_WB;
		ret = ioctl(fd, CONTIGMEM_IOC_ALLOC, &alloc);
	}
	if (ret < 0)
		die("CONTIGMEM_IOC_ALLOC pages %lu bytes, cache %s: %s", BUFFER_SIZE,
		    cache_names[alloc.cache], strerror(errno));
	if (alloc.reserved_size < BUFFER_SIZE)
		die("ALLOC reserved %llu bytes, asked for %lu",
		    (unsigned long long)alloc.reserved_size, BUFFER_SIZE);
	printf("alloc: id %llu, %llu bytes, cache %s, mmap offset %#llx, phys %#llx, %llu ns\n",
	       (unsigned long long)alloc.id, (unsigned long long)alloc.reserved_size,
	       cache_names[alloc.cache], (unsigned long long)alloc.mmap_offset,
	       (unsigned long long)alloc.phys_addr, (unsigned long long)alloc.alloc_ns);

	p = mmap(NULL, BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 (off_t)alloc.mmap_offset);
	if (p == MAP_FAILED)
		die("mmap %lu bytes at offset %#llx: %s", BUFFER_SIZE,
		    (unsigned long long)alloc.mmap_offset, strerror(errno));
	printf("mmap: %lu bytes at %p\n", BUFFER_SIZE, (void *)p);

	/* The buffer comes zeroed; then the pattern goes to the head and to each page's first byte. */
	for (off = 0; off < BUFFER_SIZE; off += page)
		if (p[off] != 0)
			die("byte %zu is %#x before writing, expected 0 (a zeroed buffer)", off, p[off]);
	for (off = 0; off < HEAD_BYTES; off++)
		p[off] = pattern(off);
	for (off = HEAD_BYTES; off < BUFFER_SIZE; off += page)
		p[off] = pattern(off);
	for (off = 0; off < HEAD_BYTES; off++)
		if (p[off] != pattern(off))
			die("byte %zu reads %#x, wrote %#x", off, p[off], pattern(off));
	for (off = HEAD_BYTES; off < BUFFER_SIZE; off += page)
		if (p[off] != pattern(off))
			die("byte %zu reads %#x, wrote %#x", off, p[off], pattern(off));
	printf("pattern: wrote and read back %lu head bytes and %lu pages\n", HEAD_BYTES,
	       BUFFER_SIZE / page);

	/* EXPORT: a dma-buf of the whole buffer, for another process or a driver to import. */
	exp.id = alloc.id;
	exp.fd_flags = O_RDWR | O_CLOEXEC;
	if (ioctl(fd, CONTIGMEM_IOC_EXPORT, &exp) < 0)
		die("CONTIGMEM_IOC_EXPORT id %llu: %s", (unsigned long long)alloc.id, strerror(errno));
	dmabuf_size = lseek(exp.fd, 0, SEEK_END);
	if (dmabuf_size != (off_t)alloc.reserved_size)
		die("dma-buf size (lseek) %lld, expected %llu", (long long)dmabuf_size,
		    (unsigned long long)alloc.reserved_size);
	printf("export: dma-buf fd %d, %lld bytes\n", exp.fd, (long long)dmabuf_size);

	info.id = alloc.id;
	if (ioctl(fd, CONTIGMEM_IOC_INFO, &info) < 0)
		die("CONTIGMEM_IOC_INFO id %llu: %s", (unsigned long long)alloc.id, strerror(errno));
	if (info.kind != CONTIGMEM_KIND_PAGES)
		die("INFO kind %u, expected %u (pages)", info.kind, CONTIGMEM_KIND_PAGES);
	if (info.size != alloc.reserved_size)
		die("INFO size %llu, expected %llu", (unsigned long long)info.size,
		    (unsigned long long)alloc.reserved_size);
	if (info.mappings != 1)
		die("INFO mappings %llu, expected 1", (unsigned long long)info.mappings);
	if (!(info.flags & CONTIGMEM_INFO_CONTIGUOUS))
		die("INFO flags %#x lack CONTIGMEM_INFO_CONTIGUOUS", info.flags);
	if (info.cache != alloc.cache)
		die("INFO cache %u, expected %u (%s)", info.cache, alloc.cache,
		    cache_names[alloc.cache]);
	if (info.dmabufs != 1)
		die("INFO dmabufs %llu, expected 1", (unsigned long long)info.dmabufs);
	printf("info: kind pages, %llu bytes, %llu segment(s), %llu mapping(s), node %d, cache %s, "
	       "%llu dma-buf(s)\n", (unsigned long long)info.size,
	       (unsigned long long)info.segments, (unsigned long long)info.mappings, info.node,
	       cache_names[info.cache], (unsigned long long)info.dmabufs);

	/*
	 * The dma-buf maps the same memory. A CPU access to it goes between DMA_BUF_IOCTL_SYNC
	 * start and end, so that the CPU sees what importing devices wrote, and they what it wrote.
	 */
	q = mmap(NULL, BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, exp.fd, 0);
	if (q == MAP_FAILED)
		die("mmap of the dma-buf: %s", strerror(errno));
	dsync.flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW;
	if (ioctl(exp.fd, DMA_BUF_IOCTL_SYNC, &dsync) < 0)
		die("DMA_BUF_IOCTL_SYNC start: %s", strerror(errno));
	if (memcmp(q, p, HEAD_BYTES) != 0)
		die("the dma-buf's first %lu bytes differ from the buffer's", HEAD_BYTES);
	for (off = HEAD_BYTES; off < BUFFER_SIZE; off += page)
		if (q[off] != p[off])
			die("dma-buf byte %zu reads %#x, the buffer's %#x", off, q[off], p[off]);
	mark = pattern(0) ^ 0xff;	/* the byte written through the dma-buf */
	q[0] = mark;
	dsync.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW;
	if (ioctl(exp.fd, DMA_BUF_IOCTL_SYNC, &dsync) < 0)
		die("DMA_BUF_IOCTL_SYNC end: %s", strerror(errno));
	printf("dma-buf: mapped at %p, shows the same bytes; wrote byte 0 through it\n", (void *)q);

	/* CONTIGMEM_IOC_SYNC brackets a CPU access through /dev/contigmem the same way. */
	sync.id = alloc.id;
	sync.length = page;
	sync.flags = CONTIGMEM_SYNC_START | CONTIGMEM_SYNC_RW;
	if (ioctl(fd, CONTIGMEM_IOC_SYNC, &sync) < 0)
		die("CONTIGMEM_IOC_SYNC start: %s", strerror(errno));
	if (p[0] != mark)
		die("byte 0 reads %#x through /dev/contigmem, wrote %#x through the dma-buf", p[0],
		    mark);
	p[0] = pattern(0);
	sync.flags = CONTIGMEM_SYNC_END | CONTIGMEM_SYNC_RW;
	if (ioctl(fd, CONTIGMEM_IOC_SYNC, &sync) < 0)
		die("CONTIGMEM_IOC_SYNC end: %s", strerror(errno));
	printf("sync: byte 0 written through the dma-buf reads back through /dev/contigmem\n");

	if (munmap(q, BUFFER_SIZE) < 0 || close(exp.fd) < 0)
		die("munmap and close of the dma-buf: %s", strerror(errno));

	if (munmap(p, BUFFER_SIZE) < 0)
		die("munmap: %s", strerror(errno));
	req.id = alloc.id;
	if (ioctl(fd, CONTIGMEM_IOC_FREE, &req) < 0)
		die("CONTIGMEM_IOC_FREE id %llu: %s", (unsigned long long)alloc.id, strerror(errno));
	printf("free: id %llu unmapped and freed\n", (unsigned long long)alloc.id);
	if (close(fd) < 0)
		die("close: %s", strerror(errno));
	printf("contigmem-example: ok\n");
	return 0;
}
