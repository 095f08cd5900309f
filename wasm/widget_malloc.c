/* The widget's wasm allocator (linked with -sMALLOC=none instead of emmalloc): 1.3 KB gzip smaller.
 *
 * Power-of-two size classes, each with a free list; a fresh block is cut from the top of the heap,
 * which grows through emscripten_resize_heap (the import the JS loader implements, so its heap
 * views follow). malloc and free are O(1). A block keeps its class for good: freed memory is
 * reused by later allocations of the same class, never returned or coalesced. For the widget's
 * pattern (a renderer's strings and vectors, rebuilt per streamed chunk, and buffers that double
 * as a reply grows) this reuses every block; the heap's peak is at most about twice what emmalloc
 * reached (rounding up to a power of two, blocks parked in other classes).
 *
 * A block is an 8-byte header (its class) and the caller's bytes. Blocks start 8 bytes past a
 * 16-byte boundary and are 16 bytes or more (powers of two), so every pointer returned is 16-byte
 * aligned, as emmalloc's are (alignof(max_align_t)).
 *
 * mallinfo().uordblks is the bytes of the blocks in use (headers and rounding included): what
 * confab_heap_used() reports to the leak tests, back to the same value once everything is freed. */
#include <emscripten/heap.h>
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

extern unsigned char __heap_base;

static char* free_lists[32];  /* by class: the first free block of 2^class bytes */
static uintptr_t heap_top;    /* where the next fresh block starts (0: not yet set) */
static size_t in_use;

static char* fresh_block(size_t bytes) {
    if (!heap_top) heap_top = (((uintptr_t)&__heap_base + 15) & ~(uintptr_t)15) + 8;
    uintptr_t end = heap_top + bytes;
    if (end < heap_top) return NULL;
    if (end > __builtin_wasm_memory_size(0) * 65536u && !emscripten_resize_heap(end)) return NULL;
    char* block = (char*)heap_top;
    heap_top = end;
    return block;
}

void* malloc(size_t size) {
    if (size > 0x40000000u) return NULL;
    /* The smallest power of two >= size + 8, and at least 16. */
    unsigned c = size <= 8 ? 4 : 32 - (unsigned)__builtin_clz((unsigned)(size + 7));
    char* block = free_lists[c];
    if (block) {
        free_lists[c] = *(char**)(block + 8);
    } else {
        block = fresh_block((size_t)1 << c);
        if (!block) return NULL;
    }
    *(unsigned*)block = c;
    in_use += (size_t)1 << c;
    return block + 8;
}

void free(void* ptr) {
    if (!ptr) return;
    char* block = (char*)ptr - 8;
    unsigned c = *(unsigned*)block;
    in_use -= (size_t)1 << c;
    *(char**)ptr = free_lists[c];
    free_lists[c] = block;
}

void* realloc(void* ptr, size_t size) {
    if (!ptr) return malloc(size);
    size_t room = ((size_t)1 << *(unsigned*)((char*)ptr - 8)) - 8;
    if (size <= room) return ptr;
    void* grown = malloc(size);
    if (grown) {
        memcpy(grown, ptr, room);
        free(ptr);
    }
    return grown;
}

struct mallinfo mallinfo(void) {
    struct mallinfo info = {0};
    info.uordblks = (int)in_use;
    return info;
}
