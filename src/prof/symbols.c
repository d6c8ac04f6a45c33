/* Names for a profile's addresses, from each loaded object's dynamic symbol table, when a profile or the
 * leak report is written.
 *
 * dladdr, which this replaces, scans an object's whole symbol table for every address it is asked about:
 * for python3 (libpython's 10,000 names, a few hundred addresses) the exit dump took 8 million
 * instructions, most of what profiling cost that run.  Here each object's table is read once for all the
 * addresses inside it (sorted, so each symbol finds the ones it holds by a binary search), inside
 * dl_iterate_phdr's callback: the loader's lock it holds keeps every object loaded (and its strings
 * readable) until the names are copied out.  The names are the ones dladdr gives: among the defined
 * symbols (not TLS, not absolute) that hold the address (value <= a < value + size, or a == value for a
 * symbol of size 0), the one with the highest value; the main program's file name is the one it was
 * started with.  Allocates nothing but the caller's scratch memory; takes no memkit lock. */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

#include "prof/prof.h"

typedef struct query {
	const uintptr_t *pcs;     /* sorted; pcs[i] - 1 is looked up (a return address: the call is before it) */
	size_t n;
	char (*names)[PROF_NAME_MAX];
	uintptr_t *best;          /* per address: the value of the symbol named so far, 0 for none */
} query;

/* The first of q's addresses in [lo, hi) whose call (address - 1) is at or above v, or hi. */
static size_t first_at(const query *q, size_t lo, size_t hi, uintptr_t v)
{
	while (lo < hi) {
		size_t m = (lo + hi) / 2;
		if (q->pcs[m] - 1 < v)
			lo = m + 1;
		else
			hi = m;
	}
	return lo;
}

static uintptr_t relocated(uintptr_t ptr, uintptr_t base)
{
	return ptr < base ? ptr + base : ptr;   /* the loader relocates .dynamic's pointers where it can write */
}

/* How many entries the symbol table has: DT_HASH says it, DT_GNU_HASH's chains end at the last one. */
static size_t symbol_count(const uint32_t *hash, const uint32_t *gnu)
{
	if (hash)
		return hash[1];
	if (!gnu)
		return 0;
	uint32_t nbuckets = gnu[0], offset = gnu[1], bloom = gnu[2];
	const uint32_t *buckets = gnu + 4 + (size_t)bloom * (sizeof(ElfW(Addr)) / 4);
	const uint32_t *chain = buckets + nbuckets;
	uint32_t last = 0;
	for (uint32_t i = 0; i < nbuckets; i++)
		if (buckets[i] > last)
			last = buckets[i];
	if (last < offset)
		return offset;
	while (!(chain[last - offset] & 1))
		last++;
	return (size_t)last + 1;
}

static void name_object(struct dl_phdr_info *info, query *q, size_t lo, size_t hi)
{
	const ElfW(Dyn) *dyn = NULL;
	uintptr_t base = info->dlpi_addr, start = UINTPTR_MAX;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(base + ph->p_vaddr);
		if (ph->p_type == PT_LOAD && base + (ph->p_vaddr & ~(uintptr_t)4095) < start)
			start = base + (ph->p_vaddr & ~(uintptr_t)4095);
	}
	const ElfW(Sym) *symtab = NULL;
	const char *strtab = NULL;
	size_t strsz = 0;
	const uint32_t *hash = NULL, *gnu = NULL;
	for (; dyn && dyn->d_tag != DT_NULL; dyn++) {
		uintptr_t v = dyn->d_un.d_ptr;
		switch (dyn->d_tag) {
		case DT_SYMTAB: symtab = (const ElfW(Sym) *)relocated(v, base); break;
		case DT_STRTAB: strtab = (const char *)relocated(v, base); break;
		case DT_STRSZ: strsz = dyn->d_un.d_val; break;
		case DT_HASH: hash = (const uint32_t *)relocated(v, base); break;
		case DT_GNU_HASH: gnu = (const uint32_t *)relocated(v, base); break;
		}
	}
	size_t nsyms = symtab && strtab ? symbol_count(hash, gnu) : 0;
	for (size_t k = 0; k < nsyms; k++) {
		const ElfW(Sym) *s = &symtab[k];
		unsigned type = s->st_info & 0xf;
		if (s->st_shndx == SHN_UNDEF || s->st_shndx == SHN_ABS || s->st_value == 0 || type == STT_TLS ||
		    type == STT_SECTION || type == STT_FILE || s->st_name >= strsz)
			continue;
		uintptr_t v = base + s->st_value, end = v + (s->st_size ? s->st_size : 1);
		for (size_t a = first_at(q, lo, hi, v); a < hi && q->pcs[a] - 1 < end; a++)
			if (q->best[a] < v) {
				q->best[a] = v;
				snprintf(q->names[a], PROF_NAME_MAX, "%s", strtab + s->st_name);
			}
	}
	const char *file = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : program_invocation_name;
	const char *slash = strrchr(file, '/');
	for (size_t a = lo; a < hi; a++)
		if (!q->best[a])
			snprintf(q->names[a], PROF_NAME_MAX, "%s+0x%lx", slash ? slash + 1 : file,
			         (unsigned long)(q->pcs[a] - start));
}

static int each_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	query *q = arg;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
		size_t first = first_at(q, 0, q->n, lo), end = first_at(q, first, q->n, hi);
		if (end > first)
			name_object(info, q, first, end);
	}
	return 0;
}

void mk__prof_symbolize(const uintptr_t *pcs, size_t n, char (*names)[PROF_NAME_MAX], uintptr_t *scratch)
{
	size_t skip = 0;
	for (size_t i = 0; i < n; i++) {
		scratch[i] = 0;
		snprintf(names[i], PROF_NAME_MAX, "0x%lx", (unsigned long)pcs[i]);   /* no object holds it */
		skip += pcs[i] <= 1;   /* not a return address: stays a number */
	}
	query q = { pcs + skip, n - skip, names + skip, scratch + skip };
	dl_iterate_phdr(each_object, &q);
}
