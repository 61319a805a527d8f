// SPDX-License-Identifier: GPL-2.0
/*
 * contigmem-edu: a userspace driver for QEMU's "edu" PCI device whose DMA engine copies to and
 * from contigmem buffers, at the physical address ALLOC reports.
 *
 * It finds the device in sysfs (vendor 0x1234, device 0x11e8), turns on its bus mastering in
 * the PCI command register, maps its BAR 0 (resource0) and checks its identification and
 * liveness registers. Then, for a kmalloc, a pages and a huge buffer (and a vmalloc one, to show
 * what a buffer that is not physically contiguous does), it fills the buffer with a pattern and
 * has the device copy 4 KiB at a time from the buffer into its own memory and back to another
 * place in the buffer, checking every byte that lands (for the vmalloc buffer, back to its first
 * page only: phys_addr + offset is not its memory further on, and the device must not write
 * there). Each transfer straddles a page boundary,
 * and the transfers are spread from the buffer's first page to its last: a device that is given
 * one address for a range needs that range physically contiguous.
 *
 * Without an IOMMU the device's DMA address is the physical address (the default mode). Behind
 * an IOMMU it is an IO virtual address: with --vfio the example binds the device to vfio-pci,
 * maps each buffer's mapping into the device's IO address space with VFIO_IOMMU_MAP_DMA and gives
 * the device those addresses (which need a mapping get_user_pages can pin: kmalloc's special
 * PTEs and the PFN maps of HUGE_MAP or write-combining buffers are refused, EFAULT), and then
 * shows that the physical address no longer reaches the buffer: the IOMMU faults it.
 *
 * Needs root (the PCI config space and BAR in sysfs or VFIO, and physical addresses) and
 * a QEMU guest started with "-device edu,dma_mask=0xffffffffffffffff" (edu's default mask is 28
 * bits: it would clamp addresses above 256 MiB). Exit status: 0 all transfers correct, 1 an
 * error or a wrong transfer of a contiguous buffer, 2 no edu device.
 *
 * Build: cc -static -O2 -Wall -Wextra -Werror -I include/uapi examples/c/contigmem-edu.c
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/contigmem.h>
#include <linux/vfio.h>

#define DEVICE		"/dev/contigmem"
#define PCI_DEVICES	"/sys/bus/pci/devices"
#define EDU_VENDOR	0x1234
#define EDU_DEVICE	0x11e8

/* edu's registers (QEMU docs/specs/edu.rst) and its DMA buffer, in BAR 0 and its DMA space. */
#define EDU_BAR_SIZE	(1UL << 20)
#define EDU_IDENT	0x00	/* 0xRRrr00ed */
#define EDU_LIVENESS	0x04	/* reads back the bitwise inverse of what was written */
#define EDU_DMA_SRC	0x80
#define EDU_DMA_DST	0x88
#define EDU_DMA_COUNT	0x90
#define EDU_DMA_CMD	0x98
#define EDU_CMD_START	0x1
#define EDU_CMD_TO_RAM	0x2	/* direction: from edu's buffer to RAM (0: RAM to edu) */
#define EDU_BUFFER	0x40000	/* edu's internal buffer, as its DMA engine addresses it */
#define EDU_BUFFER_SIZE	4096UL
#define PCI_COMMAND	0x04
#define PCI_COMMAND_MEMORY	0x2
#define PCI_COMMAND_MASTER	0x4

/* Transfers per buffer: spread over it, first and last page included. */
#define TRANSFERS	16

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "contigmem-edu: error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Reads a hex number (vendor, device) from the sysfs file @dir/@name; -1 if it cannot. */
static long read_hex(const char *dir, const char *name)
{
	char path[600], text[32];
	FILE *f;
	long v = -1;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(text, sizeof(text), f))
		v = strtol(text, NULL, 16);
	fclose(f);
	return v;
}

/* The sysfs directory of the first edu device into @out, or 0 if there is none. */
static int find_edu(char *out, size_t len)
{
	DIR *d = opendir(PCI_DEVICES);
	struct dirent *e;
	int found = 0;

	if (!d)
		return 0;
	while (!found && (e = readdir(d))) {
		char dir[300];

		if (e->d_name[0] == '.')
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", PCI_DEVICES, e->d_name);
		if (read_hex(dir, "vendor") == EDU_VENDOR && read_hex(dir, "device") == EDU_DEVICE) {
			snprintf(out, len, "%s", dir);
			found = 1;
		}
	}
	closedir(d);
	return found;
}

/* Turns on memory decoding and bus mastering in the device's PCI command register. */
static void enable_bus_master(const char *dir)
{
	char path[600];
	uint16_t cmd;
	int fd;

	snprintf(path, sizeof(path), "%s/config", dir);
	fd = open(path, O_RDWR);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	if (pread(fd, &cmd, sizeof(cmd), PCI_COMMAND) != sizeof(cmd))
		die("read the PCI command register: %s", strerror(errno));
	cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	if (pwrite(fd, &cmd, sizeof(cmd), PCI_COMMAND) != sizeof(cmd))
		die("write the PCI command register: %s", strerror(errno));
	close(fd);
}

static volatile uint8_t *bar;

static uint32_t rd32(unsigned long reg)
{
	return *(volatile uint32_t *)(bar + reg);
}

static void wr32(unsigned long reg, uint32_t v)
{
	*(volatile uint32_t *)(bar + reg) = v;
}

static void wr64(unsigned long reg, uint64_t v)
{
	*(volatile uint64_t *)(bar + reg) = v;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * One DMA transfer of @count bytes: from RAM address @src to edu's buffer (@to_ram 0), or from
 * edu's buffer to RAM address @dst (@to_ram 1). edu runs it on a timer (100 ms of virtual time)
 * and clears the start bit when it is done.
 */
static void dma(uint64_t src, uint64_t dst, uint64_t count, int to_ram)
{
	double start = now();

	wr64(EDU_DMA_SRC, src);
	wr64(EDU_DMA_DST, dst);
	wr64(EDU_DMA_COUNT, count);
	wr64(EDU_DMA_CMD, EDU_CMD_START | (to_ram ? EDU_CMD_TO_RAM : 0));
	while (rd32(EDU_DMA_CMD) & EDU_CMD_START) {
		if (now() - start > 5.0)
			die("DMA of %llu bytes %s %#llx timed out after 5 s",
			    (unsigned long long)count, to_ram ? "to" : "from",
			    (unsigned long long)(to_ram ? dst : src));
		usleep(1000);
	}
}

static uint8_t pattern(size_t off)
{
	return (uint8_t)(off ^ (off >> 12) * 31 ^ 0x5a);
}

struct result {
	unsigned transfers, wrong;
	unsigned long long segments;
	int refused, phys_reached;
};

/*
 * Allocates @size bytes of @kind, fills them with the pattern, and runs TRANSFERS round trips
 * through the device, each 4 KiB from an offset straddling a page boundary into edu and back to
 * the mirrored offset (the buffer's other end), checked byte by byte.
 */
/* VFIO mode: the container, and the next IO virtual address to map a buffer at (256 GiB up,
 * away from any physical address of the guest). */
static int container = -1;
static uint64_t next_iova = 1ULL << 38;

/*
 * The address the device is to use for @p (@size bytes, physical address @phys): @phys, or in
 * VFIO mode an IO virtual address VFIO_IOMMU_MAP_DMA gives it; 0 when VFIO refuses the mapping
 * (with the reason printed).
 */
static uint64_t dma_address(const char *name, void *p, uint64_t size, uint64_t phys)
{
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)p,
		.size = size,
	};

	if (container < 0)
		return phys;
	map.iova = next_iova;
	if (ioctl(container, VFIO_IOMMU_MAP_DMA, &map) < 0) {
		printf("%s: VFIO_IOMMU_MAP_DMA: %s: get_user_pages cannot pin its mapping\n", name,
		       strerror(errno));
		return 0;
	}
	next_iova += 1ULL << 30;
	return map.iova;
}

static void dma_unmap(uint64_t iova, uint64_t size)
{
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = sizeof(unmap), .iova = iova, .size = size,
	};

	if (container >= 0 && ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap) < 0)
		die("VFIO_IOMMU_UNMAP_DMA at %#llx: %s", (unsigned long long)iova, strerror(errno));
}

static struct result run(int fd, unsigned kind, const char *name, uint64_t size, uint32_t flags)
{
	struct contigmem_alloc a = { .size = size, .kind = kind, .node = -1, .flags = flags };
	struct contigmem_info info = { 0 };
	struct contigmem_free f = { 0 };
	struct result r = { 0 };
	uint64_t base;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint8_t *p;
	size_t off;
	int i;

	if (ioctl(fd, CONTIGMEM_IOC_ALLOC, &a) < 0)
		die("ALLOC %s %llu bytes: %s", name, (unsigned long long)size, strerror(errno));
	if (a.phys_addr == 0)
		die("ALLOC %s: no physical address (a file opened without CAP_SYS_ADMIN)", name);
	info.id = a.id;
	if (ioctl(fd, CONTIGMEM_IOC_INFO, &info) < 0)
		die("INFO %s: %s", name, strerror(errno));
	r.segments = info.segments;
	p = mmap(NULL, a.reserved_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 (off_t)a.mmap_offset);
	if (p == MAP_FAILED)
		die("mmap %s: %s", name, strerror(errno));
	for (off = 0; off < a.reserved_size; off++)
		p[off] = pattern(off);
	base = dma_address(name, p, a.reserved_size, a.phys_addr);
	printf("%s: %llu bytes at phys %#llx, %llu segment(s), device address %#llx%s\n", name,
	       (unsigned long long)a.reserved_size, (unsigned long long)a.phys_addr,
	       (unsigned long long)info.segments, (unsigned long long)base,
	       info.segments > 1 && container < 0 ?
	       ": not physically contiguous, so phys_addr is only its first page's; a device needs "
	       "one address per segment" : "");
	if (base == 0) {
		r.refused = 1;
		goto out;
	}
	for (i = 0; i < TRANSFERS; i++) {
		/* Half a page before a page boundary, from the first page to the last. */
		uint64_t span = a.reserved_size - 2 * page;
		uint64_t from = page / 2 + (span / page * i / (TRANSFERS - 1)) * page;
		uint64_t to = a.reserved_size - from - EDU_BUFFER_SIZE;
		size_t k, bad = 0;

		if (from + EDU_BUFFER_SIZE > a.reserved_size)
			from = a.reserved_size - EDU_BUFFER_SIZE - page / 2;
		/*
		 * Memory that is not contiguous: phys_addr + offset is someone else's memory past the
		 * first page. Reading it is harmless; the device writes back into the first page only,
		 * which is ours.
		 */
		if (info.segments > 1 && container < 0)
			to = 0;
		dma(base + from, EDU_BUFFER, EDU_BUFFER_SIZE, 0);
		memset(p + to, 0, EDU_BUFFER_SIZE);
		dma(EDU_BUFFER, base + to, EDU_BUFFER_SIZE, 1);
		for (k = 0; k < EDU_BUFFER_SIZE; k++)
			if (p[to + k] != pattern(from + k))
				bad++;
		r.transfers++;
		if (bad) {
			r.wrong++;
			if (info.segments == 1 || container >= 0)
				printf("  transfer %d: [%#llx, +4K) -> edu -> [%#llx, +4K): %zu of %lu "
				       "bytes wrong\n", i, (unsigned long long)from,
				       (unsigned long long)to, bad, EDU_BUFFER_SIZE);
		}
		/* Put the pattern back for the next transfers. */
		for (k = 0; k < EDU_BUFFER_SIZE; k++)
			p[to + k] = pattern(to + k);
	}
	printf("%s: %u transfers of 4K through the device (each across a page boundary, "
	       "first to last page), %u wrong\n", name, r.transfers, r.wrong);
	if (container >= 0) {
		/*
		 * The proof: the physical address is no address of the device's any more. The device
		 * writes its buffer (the last transfer's bytes) at it; the IOMMU must refuse that,
		 * leaving the buffer as it was, and log a DMAR fault.
		 */
		memset(p, 0x33, EDU_BUFFER_SIZE);
		dma(EDU_BUFFER, a.phys_addr, EDU_BUFFER_SIZE, 1);
		for (off = 0; off < EDU_BUFFER_SIZE && p[off] == 0x33; off++)
			;
		r.phys_reached = off < EDU_BUFFER_SIZE;
		printf("%s: the device's write at the physical address %#llx %s\n", name,
		       (unsigned long long)a.phys_addr,
		       r.phys_reached ? "REACHED the buffer" :
		       "did not reach the buffer (the IOMMU refused it)");
		dma_unmap(base, a.reserved_size);
	}
out:
	munmap(p, a.reserved_size);
	f.id = a.id;
	if (ioctl(fd, CONTIGMEM_IOC_FREE, &f) < 0)
		die("FREE %s: %s", name, strerror(errno));
	return r;
}

/*
 * VFIO: binds the device at @dir to vfio-pci if it has no driver, sets up a type1 container for
 * its IOMMU group, and returns the device's VFIO file; its BAR 0 is mapped into `bar` and bus
 * mastering is set through its config region.
 */
static int vfio_open(const char *dir)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	struct vfio_region_info reg = { .argsz = sizeof(reg) };
	char path[600], link[300], *name = strrchr(dir, '/') + 1;
	const char *group_id;
	uint16_t cmd;
	ssize_t n;
	int group, dev;
	FILE *f;

	snprintf(path, sizeof(path), "%s/driver", dir);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0) {
		f = fopen("/sys/bus/pci/drivers/vfio-pci/new_id", "w");
		if (!f || fprintf(f, "1234 11e8\n") < 0 || fclose(f) != 0)
			die("binding %s to vfio-pci (new_id): %s (is CONFIG_VFIO_PCI on?)", name,
			    strerror(errno));
		n = readlink(path, link, sizeof(link) - 1);
	}
	if (n < 0)
		die("%s has no driver after binding it to vfio-pci", name);
	link[n] = 0;
	if (strcmp(strrchr(link, '/') + 1, "vfio-pci") != 0)
		die("%s is bound to %s, not vfio-pci: unbind it first", name, link);
	snprintf(path, sizeof(path), "%s/iommu_group", dir);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		die("%s has no IOMMU group: no IOMMU (boot with one, e.g. intel_iommu=on)", name);
	link[n] = 0;
	group_id = strrchr(link, '/') + 1;

	container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (container < 0)
		die("open /dev/vfio/vfio: %s", strerror(errno));
	if (ioctl(container, VFIO_GET_API_VERSION) != VFIO_API_VERSION ||
	    ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) != 1)
		die("/dev/vfio/vfio: not VFIO API %d with the type1v2 IOMMU", VFIO_API_VERSION);
	snprintf(path, sizeof(path), "/dev/vfio/%s", group_id);
	group = open(path, O_RDWR | O_CLOEXEC);
	if (group < 0)
		die("open %s: %s", path, strerror(errno));
	if (ioctl(group, VFIO_GROUP_GET_STATUS, &status) < 0 ||
	    !(status.flags & VFIO_GROUP_FLAGS_VIABLE))
		die("IOMMU group %s is not viable: bind all its devices to vfio-pci", group_id);
	if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) < 0 ||
	    ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0)
		die("IOMMU group %s: setting up the container: %s", group_id, strerror(errno));
	dev = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, name);
	if (dev < 0)
		die("VFIO_GROUP_GET_DEVICE_FD %s: %s", name, strerror(errno));

	reg.index = VFIO_PCI_BAR0_REGION_INDEX;
	if (ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &reg) < 0 || reg.size < EDU_BAR_SIZE ||
	    !(reg.flags & VFIO_REGION_INFO_FLAG_MMAP))
		die("%s: BAR 0 through VFIO: %s", name, strerror(errno));
	bar = mmap(NULL, EDU_BAR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, dev, (off_t)reg.offset);
	if (bar == MAP_FAILED)
		die("mmap of BAR 0 through VFIO: %s", strerror(errno));
	reg.index = VFIO_PCI_CONFIG_REGION_INDEX;
	if (ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &reg) < 0)
		die("%s: config space through VFIO: %s", name, strerror(errno));
	if (pread(dev, &cmd, sizeof(cmd), (off_t)reg.offset + PCI_COMMAND) != sizeof(cmd))
		die("read the PCI command register through VFIO: %s", strerror(errno));
	cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	if (pwrite(dev, &cmd, sizeof(cmd), (off_t)reg.offset + PCI_COMMAND) != sizeof(cmd))
		die("write the PCI command register through VFIO: %s", strerror(errno));
	printf("vfio: %s in IOMMU group %s, type1v2 container\n", name, group_id);
	return dev;
}

int main(int argc, char **argv)
{
	char dir[300], path[600];
	struct result r;
	int fd, bfd = -1, failed = 0, vfio = argc > 1 && strcmp(argv[1], "--vfio") == 0;
	uint32_t ident;

	if (argc > 1 && !vfio) {
		fprintf(stderr, "usage: contigmem-edu [--vfio]\n");
		return 1;
	}
	if (!find_edu(dir, sizeof(dir))) {
		fprintf(stderr, "contigmem-edu: no edu device (PCI 1234:11e8) in %s: start QEMU "
			"with -device edu,dma_mask=0xffffffffffffffff\n", PCI_DEVICES);
		return 2;
	}
	if (geteuid() != 0)
		die("needs root: the device's config space and BAR, and physical addresses from "
		    "contigmem");
	if (vfio) {
		bfd = vfio_open(dir);
	} else {
		enable_bus_master(dir);
		snprintf(path, sizeof(path), "%s/resource0", dir);
		bfd = open(path, O_RDWR | O_SYNC);
		if (bfd < 0)
			die("open %s: %s", path, strerror(errno));
		bar = mmap(NULL, EDU_BAR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, bfd, 0);
		if (bar == MAP_FAILED)
			die("mmap %s: %s", path, strerror(errno));
	}
	snprintf(path, sizeof(path), "%s BAR 0", strrchr(dir, '/') + 1);
	ident = rd32(EDU_IDENT);
	if ((ident & 0xffff) != 0x00ed)
		die("%s: identification %#x is not edu's (0xRRrr00ed)", path, ident);
	wr32(EDU_LIVENESS, 0x12345678);
	if (rd32(EDU_LIVENESS) != ~0x12345678u)
		die("%s: the liveness register reads %#x, expected %#x", path,
		    rd32(EDU_LIVENESS), ~0x12345678u);
	printf("edu: %s, version %u.%u, bus master on\n", strrchr(dir, '/') + 1, ident >> 24,
	       (ident >> 16) & 0xff);

	fd = open(DEVICE, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die("open %s: %s (is the module loaded?)", DEVICE, strerror(errno));
	/*
	 * vmalloc memory is contiguous only by chance (on a freshly booted machine it often is):
	 * INFO's segment count tells, and a transfer that leaves the first page's run reads memory
	 * that is not the buffer's.
	 */
	r = run(fd, CONTIGMEM_KIND_VMALLOC, "vmalloc", 4UL << 20, 0);
	if (vfio)
		failed |= r.wrong != 0 || r.phys_reached;
	else if (r.segments > 1)
		printf("vmalloc: %u of %u transfers wrong: the device was given one address for %llu "
		       "physical runs\n", r.wrong, r.transfers, (unsigned long long)r.segments);
	else
		printf("vmalloc: its pages happened to be one physical run this time; nothing "
		       "promises it\n");
	r = run(fd, CONTIGMEM_KIND_KMALLOC, "kmalloc", 1UL << 20, 0);
	/* With VFIO kmalloc's mapping (special PTEs) cannot be pinned: refused, as expected. */
	failed |= r.wrong != 0 || r.phys_reached || (vfio && !r.refused);
	r = run(fd, CONTIGMEM_KIND_PAGES, "pages", 4UL << 20, 0);
	failed |= r.wrong != 0 || r.phys_reached || r.refused;
	r = run(fd, CONTIGMEM_KIND_HUGE, "huge", 64UL << 20, 0);
	failed |= r.wrong != 0 || r.phys_reached || r.refused;
	if (vfio) {
		/* A PFN map (HUGE_MAP) of RAM: VFIO refuses it too. */
		r = run(fd, CONTIGMEM_KIND_HUGE, "huge (HUGE_MAP)", 64UL << 20,
			CONTIGMEM_ALLOC_HUGE_MAP);
		failed |= !r.refused;
	}
	close(fd);
	munmap((void *)bar, EDU_BAR_SIZE);
	close(bfd);
	if (failed)
		die(vfio ? "a transfer went wrong, a mapping was refused or accepted unexpectedly, or "
			   "the physical address reached a buffer" :
			   "a transfer of a physically contiguous buffer went wrong");
	printf("contigmem-edu: ok\n");
	return 0;
}
