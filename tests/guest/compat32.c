// SPDX-License-Identifier: GPL-2.0
/*
 * contigmem from a 32-bit process: the guest test of the compat path (ioctls through
 * compat_ptr_ioctl, mmap2's 32-bit page offsets, the file's own range of 255 ids).
 *
 * Built for i386 against the kernel's nolibc (tools/include/nolibc), so no 32-bit C library is
 * needed, by qemu/compat32.sh. Prints one "# ..." line per step and, last, "ok" or
 * "FAIL: why"; exits 0 only when every step passed.
 */
#include <linux/contigmem.h>

/* The ids a 32-bit file can hold: 1 .. 255 (mmap2's page offset is 32 bits). */
#define COMPAT_IDS 256
/* More ALLOC+FREE pairs than the range has ids, so that ids wrap before the checks. */
#define CHURN 600

static int failed;

static void fail(const char *what, long long saw)
{
	printf("FAIL: %s (saw %lld, errno %d)\n", what, saw, errno);
	failed = 1;
}

/* mmap2 itself: nolibc's mmap() takes a 32-bit off_t, which cannot hold a cookie. */
static void *map_pages(int fd, unsigned long len, unsigned long pgoff)
{
	long ret = __nolibc_syscall6(__NR_mmap2, 0, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
				     pgoff);

	if ((unsigned long)ret >= -4095UL) {
		errno = -ret;
		return MAP_FAILED;
	}
	return (void *)ret;
}

/* pread64/pwrite64 with the 64-bit offset in two registers, as i386 passes it. */
static long rw64(int nr, int fd, void *buf, unsigned long n, unsigned long long off)
{
	long ret = __nolibc_syscall5(nr, fd, buf, n, (unsigned long)off, (unsigned long)(off >> 32));

	if (ret < 0) {
		errno = -ret;
		return -1;
	}
	return ret;
}

static int alloc(int fd, unsigned int kind, unsigned long long size, struct contigmem_alloc *a)
{
	memset(a, 0, sizeof(*a));
	a->size = size;
	a->kind = kind;
	a->node = -1;
	return ioctl(fd, CONTIGMEM_IOC_ALLOC, a);
}

static int free_id(int fd, unsigned long long id)
{
	struct contigmem_free f = { .id = id };

	return ioctl(fd, CONTIGMEM_IOC_FREE, &f);
}

/* ALLOC, mmap through mmap2, a pattern written there and read back with pread64. */
static void map_and_check(int fd, unsigned int kind, unsigned long size)
{
	struct contigmem_alloc a;
	struct contigmem_info info;
	unsigned char back[16];
	unsigned char *p;
	unsigned long i;

	if (alloc(fd, kind, size, &a) != 0) {
		fail("ALLOC from a 32-bit process", -1);
		return;
	}
	printf("# kind %u: id %llu, mmap_offset %#llx\n", kind, a.id, a.mmap_offset);
	if (a.id == 0 || a.id >= COMPAT_IDS)
		fail("a 32-bit process's id is in [1, 256)", a.id);
	if ((a.mmap_offset >> 12) + (size >> 12) > 0xffffffffULL)
		fail("the buffer's page offsets fit mmap2's 32 bits", a.mmap_offset);
	p = map_pages(fd, size, a.mmap_offset >> 12);
	if (p == MAP_FAILED) {
		fail("mmap2 of the buffer", -1);
	} else {
		for (i = 0; i < size; i++)
			p[i] = (unsigned char)(i * 7 + kind);
		if (rw64(__NR_pread64, fd, back, sizeof(back), a.mmap_offset + size - sizeof(back)) !=
		    sizeof(back))
			fail("pread64 at the buffer's cookie", -1);
		else if (memcmp(back, p + size - sizeof(back), sizeof(back)) != 0)
			fail("pread64 returns what the mapping wrote", back[0]);
		munmap(p, size);
	}
	memset(&info, 0, sizeof(info));
	info.id = a.id;
	if (ioctl(fd, CONTIGMEM_IOC_INFO, &info) != 0 || info.size != size || info.kind != kind)
		fail("INFO of the buffer", (long long)info.size);
	if (free_id(fd, a.id) != 0)
		fail("FREE of the buffer", -1);
}

int main(void)
{
	static unsigned long long held[COMPAT_IDS];
	struct contigmem_version v;
	struct contigmem_alloc a;
	int fd, other, n, i;

	if (sizeof(void *) != 4) {
		printf("FAIL: not built as a 32-bit program\n");
		return 1;
	}
	fd = open("/dev/contigmem", O_RDWR);
	if (fd < 0) {
		printf("FAIL: open /dev/contigmem: errno %d\n", errno);
		return 1;
	}
	memset(&v, 0, sizeof(v));
	if (ioctl(fd, CONTIGMEM_IOC_VERSION, &v) != 0 || v.abi_version != CONTIGMEM_ABI_VERSION)
		fail("VERSION from a 32-bit process", v.abi_version);

	/* Ids come and go: a long-running 32-bit process must not run out. */
	for (i = 0; i < CHURN; i++) {
		if (alloc(fd, CONTIGMEM_KIND_KMALLOC, 4096, &a) != 0 || free_id(fd, a.id) != 0) {
			fail("ALLOC+FREE pairs from a 32-bit process", i);
			break;
		}
	}
	printf("# %d ALLOC+FREE pairs, the last id %llu\n", i, a.id);

	map_and_check(fd, CONTIGMEM_KIND_KMALLOC, 4096);
	map_and_check(fd, CONTIGMEM_KIND_VMALLOC, 1 << 20);
	map_and_check(fd, CONTIGMEM_KIND_PAGES, 1 << 20);
	map_and_check(fd, CONTIGMEM_KIND_HUGE, 4 << 20);

	/* The file's range holds 255 ids; the next ALLOC is ENOSPC, and another file has its own. */
	for (n = 0; n < COMPAT_IDS; n++) {
		if (alloc(fd, CONTIGMEM_KIND_KMALLOC, 4096, &a) != 0)
			break;
		held[n] = a.id;
	}
	printf("# %d buffers held, then errno %d\n", n, errno);
	if (n != COMPAT_IDS - 1 || errno != ENOSPC)
		fail("a 32-bit file holds 255 buffers, then ALLOC is ENOSPC", n);
	other = open("/dev/contigmem", O_RDWR);
	if (other < 0 || alloc(other, CONTIGMEM_KIND_KMALLOC, 4096, &a) != 0 || a.id >= COMPAT_IDS)
		fail("a second file's ALLOC while the first is full", (long long)a.id);
	if (other >= 0)
		close(other);
	if (n > 0 && free_id(fd, held[n / 2]) != 0)
		fail("FREE in a full file", (long long)held[n / 2]);
	if (alloc(fd, CONTIGMEM_KIND_KMALLOC, 4096, &a) != 0)
		fail("ALLOC after one FREE in a full file", -1);
	close(fd);

	if (!failed)
		printf("ok\n");
	return failed;
}
