// SPDX-License-Identifier: GPL-2.0
/*
 * contigmem: the static inlines and macros of the kernel headers that the Rust crate calls and
 * the kernel crate's bindings do not export (as drivers/android/binder mixes C into a Rust
 * module). Each is one call of the kernel's own; the Rust side declares them in rust/sys.rs.
 */
#include <linux/compat.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/topology.h>

int contigmem_numa_mem_id(void);
int contigmem_pfn_to_nid(unsigned long pfn);
void contigmem_cond_resched(void);
bool contigmem_fatal_signal_pending(void);
bool contigmem_in_compat_syscall(void);

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
