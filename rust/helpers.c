// SPDX-License-Identifier: GPL-2.0
/*
 * contigmem: the static inlines and macros of the kernel headers that the Rust crate calls and
 * the kernel crate's bindings do not export (as drivers/android/binder mixes C into a Rust
 * module). Each is one call of the kernel's own; the Rust side declares them in rust/sys.rs.
 */
#include <linux/compat.h>
#include <linux/dma-buf.h>
#include <linux/dma-mapping.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/scatterlist.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/topology.h>
#ifdef CONFIG_X86_PAT
#include <asm/memtype.h>
#include <asm/set_memory.h>
#endif

int contigmem_numa_mem_id(void);
int contigmem_pfn_to_nid(unsigned long pfn);
void contigmem_cond_resched(void);
bool contigmem_fatal_signal_pending(void);
bool contigmem_in_compat_syscall(void);
void contigmem_folio_unfreeze(struct page *head);
void contigmem_folio_put(struct page *head);
vm_fault_t contigmem_insert_folio_pmd(struct vm_fault *vmf, struct page *head, bool write);
vm_fault_t contigmem_fault_page(struct vm_fault *vmf, struct page *page);
bool contigmem_folio_hwpoisoned(struct page *head);
struct page *contigmem_pfn_to_page(unsigned long pfn);
void contigmem_sg_set_page(struct scatterlist *sg, struct page *page, unsigned int len);
void contigmem_dma_sync_sgtable(struct device *dev, struct sg_table *sgt, int dir, bool for_cpu);
void contigmem_iosys_map_set_vaddr(struct iosys_map *map, void *vaddr);
unsigned int contigmem_dma_max_seg_size(struct device *dev);
u64 contigmem_dma_seg_boundary(struct device *dev);
unsigned long contigmem_page_to_pfn(struct page *page);
bool contigmem_cache_modes(void);
int contigmem_set_memory_cache(void *addr, int numpages, int mode);
void contigmem_vma_set_cache(struct vm_area_struct *vma, int mode);
void contigmem_mb(void);

/* dma_buf_export() and dma_buf_put() are exported in the DMA_BUF namespace. */
MODULE_IMPORT_NS("DMA_BUF");

/* The nearest node with memory to the CPU this runs on (the "local" node of allocations). */
int contigmem_numa_mem_id(void)
{
	return numa_mem_id();
}

/* The node of page frame @pfn, which the caller owns (so its struct page is valid). */
int contigmem_pfn_to_nid(unsigned long pfn)
{
	return page_to_nid(pfn_to_page(pfn));
}

/* cond_resched(), a macro: lets a long loop yield the CPU on kernels without preemption. */
void contigmem_cond_resched(void)
{
	cond_resched();
}

/* Whether the current task is being killed: a long loop stops rather than make it wait. */
bool contigmem_fatal_signal_pending(void)
{
	return fatal_signal_pending(current);
}

/*
 * Whether the current system call comes from a 32-bit process, whose mmap2 takes the offset in
 * pages in 32 bits (false without COMPAT). On x86 that is ia32 only: x32 processes are compat
 * tasks too, but their mmap takes a 64-bit offset.
 */
bool contigmem_in_compat_syscall(void)
{
#ifdef CONFIG_X86
	return in_ia32_syscall();
#else
	return in_compat_syscall();
#endif
}

/*
 * Gives the frozen compound page @head (reference count 0, as alloc_contig_frozen_range()
 * returns it) its first reference, which the caller owns: a folio like any other from then on,
 * freed by its last folio_put().
 */
void contigmem_folio_unfreeze(struct page *head)
{
	folio_ref_unfreeze(page_folio(head), 1);
}

/* Drops a reference to the folio whose head page is @head. */
void contigmem_folio_put(struct page *head)
{
	folio_put(page_folio(head));
}

/*
 * Maps the PMD-order folio whose head page is @head at the PMD-aligned faulting address, as a
 * refcounted huge entry (the folio gains a reference and an entire mapcount).
 */
vm_fault_t contigmem_insert_folio_pmd(struct vm_fault *vmf, struct page *head, bool write)
{
	/*
	 * A page table where the PMD would go (a racing PTE fault after THP was switched off for
	 * the process, say) is not ours to replace: fall back to a PTE. insert_pmd() would WARN on
	 * it; this narrows that window of the kernel's, under the PMD lock it takes, to nothing
	 * but the race between this read and that lock.
	 */
	pmd_t pmd = pmdp_get_lockless(vmf->pmd);

	if (!pmd_none(pmd) && !pmd_leaf(pmd))
		return VM_FAULT_FALLBACK;
	return vmf_insert_folio_pmd(vmf, page_folio(head), write);
}

/*
 * Answers a ->fault with @page, as a page-cache fault does: the fault code takes the reference
 * given here with the page, locks its folio and maps it with a PTE.
 */
vm_fault_t contigmem_fault_page(struct vm_fault *vmf, struct page *page)
{
	get_page(page);
	vmf->page = page;
	return 0;
}

/*
 * Whether a page of the folio headed by @head has a memory error (memory_failure() marked it:
 * it cannot handle a page that is neither on the LRU nor free, so it leaves the folio to us).
 */
bool contigmem_folio_hwpoisoned(struct page *head)
{
	struct folio *folio = page_folio(head);
	long i;

	for (i = 0; i < folio_nr_pages(folio); i++)
		if (PageHWPoison(folio_page(folio, i)))
			return true;
	return false;
}

/* The struct page of page frame @pfn, which the caller owns. */
struct page *contigmem_pfn_to_page(unsigned long pfn)
{
	return pfn_to_page(pfn);
}

/* Makes @sg the @len bytes of physically contiguous memory from the start of @page. */
void contigmem_sg_set_page(struct scatterlist *sg, struct page *page, unsigned int len)
{
	sg_set_page(sg, page, len, 0);
}

/*
 * Hands the DMA mapping @sgt of @dev to the CPU (@for_cpu) or back to the device: cache
 * maintenance on a machine that is not DMA-coherent, a copy from or to the bounce buffer where
 * swiotlb bounced the mapping, nothing otherwise.
 */
void contigmem_dma_sync_sgtable(struct device *dev, struct sg_table *sgt, int dir, bool for_cpu)
{
	if (for_cpu)
		dma_sync_sgtable_for_cpu(dev, sgt, dir);
	else
		dma_sync_sgtable_for_device(dev, sgt, dir);
}

/* The longest scatterlist segment @dev takes (64 KiB unless its driver set dma_parms). */
unsigned int contigmem_dma_max_seg_size(struct device *dev)
{
	return dma_get_max_seg_size(dev);
}

/* The mask of the addresses no scatterlist segment of @dev may cross (4 GiB - 1 for PCI). */
u64 contigmem_dma_seg_boundary(struct device *dev)
{
	return dma_get_seg_boundary(dev);
}

/* The page frame number of @page, which the caller owns. */
unsigned long contigmem_page_to_pfn(struct page *page)
{
	return page_to_pfn(page);
}

/* Points @map at the kernel address @vaddr of system memory. */
void contigmem_iosys_map_set_vaddr(struct iosys_map *map, void *vaddr)
{
	iosys_map_set_vaddr(map, vaddr);
}

/*
 * Caching modes: the values of enum contigmem_cache (include/uapi/linux/contigmem.h), which
 * rust/abi.rs mirrors.
 */
#define CONTIGMEM_CACHE_WB	0
#define CONTIGMEM_CACHE_WC	1
#define CONTIGMEM_CACHE_UC	2

/*
 * Whether the kernel can give RAM a caching mode other than write-back: x86 with PAT enabled
 * (without PAT, set_memory_wc() would make memory uncached, and the user mappings' attributes
 * would mean something else).
 */
bool contigmem_cache_modes(void)
{
#ifdef CONFIG_X86_PAT
	return pat_enabled();
#else
	return false;
#endif
}

/*
 * Gives the @numpages pages of the direct map from @addr the caching mode @mode, tracked by PAT
 * as the pages' memtype (which the kernel's PFN inserts then follow): set_memory_wc(),
 * set_memory_uc() (uncached-minus), or set_memory_wb() back to write-back, which the memory must
 * be before it is freed.
 */
int contigmem_set_memory_cache(void *addr, int numpages, int mode)
{
#ifdef CONFIG_X86_PAT
	unsigned long a = (unsigned long)addr;

	switch (mode) {
	case CONTIGMEM_CACHE_WB:
		return set_memory_wb(a, numpages);
	case CONTIGMEM_CACHE_WC:
		return set_memory_wc(a, numpages);
	case CONTIGMEM_CACHE_UC:
		return set_memory_uc(a, numpages);
	}
	return -EINVAL;
#else
	return mode == CONTIGMEM_CACHE_WB ? 0 : -EOPNOTSUPP;
#endif
}

/*
 * Gives the user mappings of a new VMA the caching mode @mode (as drivers do with
 * pgprot_writecombine() in their mmap): the kernel keeps these bits of vm_page_prot when it
 * recomputes it (vma_set_page_prot(), mprotect), and every entry inserted takes them.
 */
void contigmem_vma_set_cache(struct vm_area_struct *vma, int mode)
{
	switch (mode) {
	case CONTIGMEM_CACHE_WC:
		vma->vm_page_prot = pgprot_writecombine(vma->vm_page_prot);
		break;
	case CONTIGMEM_CACHE_UC:
		vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);
		break;
	}
}

/* A full memory barrier (mb(), mfence on x86: it also drains the write-combining buffers). */
void contigmem_mb(void)
{
	mb();
}
