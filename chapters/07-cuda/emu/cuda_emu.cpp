// The emulator's scheduler: a grid of CUDA blocks run on the CPU.
//
// One launch runs its blocks one after another on the calling OS thread.
// Inside a block, each CUDA thread is a fiber: a function call with its
// own stack that can stop in the middle (at `__syncthreads()`, a shuffle,
// a vote) and be resumed later. The scheduler runs every ready fiber of
// the block, in the order the launch's *schedule* asks for, until it
// stops; a fiber that waits is resumed when its partners have arrived:
//
// - `__syncthreads()` releases the block when *every* thread has reached a
//   barrier; if some threads have already returned, no release can ever
//   come (on a GPU, a hang or undefined behaviour), and the launch fails;
// - a warp collective (`__shfl_*_sync`, `__ballot_sync`...) completes when
//   every lane named in its mask has arrived at one, of the same kind and
//   mask; the last lane to arrive computes every lane's result.
//
// Running the threads in another order must not change a correct kernel's
// result. A kernel that forgot a `__syncthreads()` reads shared memory
// before another thread wrote it; with threads run forward that may go
// unnoticed, backward or shuffled it does not. So tests run kernels under
// the three schedules and compare.
#include "cuda_emu.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

// Dynamic shared memory: kernels declare
// `extern __shared__ __align__(16) unsigned char candle_smem[];`, which the
// emulator's `__shared__` turns into this thread-local array. It is as big
// as a block may ask for by default (48 KiB), plus a guard that must stay
// poisoned.
constexpr unsigned int kMaxDynamicShared = 48 * 1024;
constexpr unsigned int kSharedGuard = 256;
thread_local __attribute__((aligned(16))) unsigned char candle_smem[kMaxDynamicShared + kSharedGuard];
constexpr unsigned char kPoison = 0xFF;  // all-ones: NaN as a float, −1 as an integer

namespace candle_emu {

thread_local ThreadState* tls_thread = nullptr;
thread_local uint3 tls_block_idx = {0, 0, 0};
thread_local dim3 tls_block_dim = {1, 1, 1};
thread_local dim3 tls_grid_dim = {1, 1, 1};

namespace {

// ---------------------------------------------------------------------------
// Switching stacks. `candle_emu_switch(&from, to)` saves the callee-saved
// registers on the current stack, stores the stack pointer in `from`,
// loads `to` and pops the registers saved there. Everything else a
// function may clobber, the C++ compiler already saved around the call.
// ANCHOR: switch
#if defined(__x86_64__)
extern "C" void candle_emu_switch(void** from, void* to);
asm(R"(
.text
.p2align 4
.type candle_emu_switch,@function
candle_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
.size candle_emu_switch,.-candle_emu_switch
)");
// ANCHOR_END: switch
#elif defined(__aarch64__)

extern "C" void candle_emu_switch(void** from, void* to);
asm(R"(
.text
.p2align 4
.type candle_emu_switch,%function
candle_emu_switch:
    sub sp, sp, #176
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mov x9, sp
    str x9, [x0]
    mov sp, x1
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #176
    ret
.size candle_emu_switch,.-candle_emu_switch
)");
#else
#error "the CUDA emulator switches stacks on x86-64 and AArch64 only"
#endif

// ---------------------------------------------------------------------------
// Fibers and their stacks.
enum State { READY, AT_BARRIER, AT_WARP, DONE };

struct Fiber {
    void* sp = nullptr;
    ThreadState ts{};
    State state = READY;
    // The warp collective this lane waits at, its value and its result.
    Collective kind = SHFL_IDX;
    unsigned int mask = 0;
    int arg = 0;
    int width = 32;
    unsigned long long value = 0;
    unsigned long long result = 0;
};

constexpr std::size_t kStackBytes = 64 * 1024;

// Stacks are mapped once per OS thread and reused by every block; each has
// an inaccessible page below it, so a kernel that overflows its stack
// faults instead of corrupting its neighbour's.
struct StackPool {
    std::vector<char*> stacks;
    std::size_t page = 0;
    ~StackPool() {
        for (char* s : stacks) munmap(s - page, kStackBytes + page);
    }
    bool ensure(std::size_t n) {
        if (page == 0) page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
        while (stacks.size() < n) {
            void* m = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED) return false;
            mprotect(m, page, PROT_NONE);
            stacks.push_back(static_cast<char*>(m) + page);
        }
        return true;
    }
};
thread_local StackPool tls_stacks;

// The block being run.
struct BlockRun {
    const char* name = nullptr;
    const LaunchArgs* args = nullptr;
    void (*thunk)(void**) = nullptr;
    void** params = nullptr;
    std::vector<Fiber> fibers;
    Fiber* current = nullptr;
    void* scheduler_sp = nullptr;
    bool failed = false;
};
thread_local BlockRun* tls_run = nullptr;

void write_error(const LaunchArgs* args, const char* fmt, va_list ap) {
    if (args->error && args->error_capacity > 0)
        vsnprintf(args->error, static_cast<std::size_t>(args->error_capacity), fmt, ap);
}

// Records a failure of the running block, naming the thread.
void block_error(BlockRun* r, const char* fmt, ...) {
    char what[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    r->failed = true;
    fail(r->args, "%s (block (%u, %u, %u))", what, tls_block_idx.x, tls_block_idx.y,
         tls_block_idx.z);
}

// ANCHOR: fiber
// Every fiber starts here, on its own stack, and never returns: when the
// kernel returns, the fiber is done and hands control back for good.
extern "C" void candle_emu_fiber_entry() {
    BlockRun* r = tls_run;
    r->thunk(r->params);
    Fiber* f = r->current;
    f->state = DONE;
    candle_emu_switch(&f->sp, r->scheduler_sp);
    __builtin_unreachable();
}

void init_fiber(Fiber& f, char* stack) {
    auto top = reinterpret_cast<std::uintptr_t>(stack + kStackBytes) & ~std::uintptr_t{15};
    auto* sp = reinterpret_cast<std::uintptr_t*>(top);
#if defined(__x86_64__)
    *--sp = 0;  // where `candle_emu_fiber_entry` would return to: nowhere
    *--sp = reinterpret_cast<std::uintptr_t>(&candle_emu_fiber_entry);  // `ret` goes here
    for (int i = 0; i < 6; ++i) *--sp = 0;                             // rbp rbx r12–r15
#else
    sp -= 22;  // the 176-byte frame `candle_emu_switch` pops
    for (int i = 0; i < 22; ++i) sp[i] = 0;
    sp[11] = reinterpret_cast<std::uintptr_t>(&candle_emu_fiber_entry);  // x30, the link register
#endif
    f.sp = sp;
}
// ANCHOR_END: fiber

// Back from a fiber to the scheduler.
void yield_to_scheduler() {
    BlockRun* r = tls_run;
    candle_emu_switch(&r->current->sp, r->scheduler_sp);
}

// splitmix64: the shuffled schedule's random numbers.
unsigned long long mix64(unsigned long long& s) {
    unsigned long long z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

const char* kind_name(Collective k) {
    switch (k) {
        case SHFL_IDX: return "__shfl_sync";
        case SHFL_UP: return "__shfl_up_sync";
        case SHFL_DOWN: return "__shfl_down_sync";
        case SHFL_XOR: return "__shfl_xor_sync";
        case BALLOT: return "__ballot_sync";
        case ANY: return "__any_sync";
        case ALL: return "__all_sync";
        case SYNCWARP: return "__syncwarp";
    }
    return "?";
}

// The lanes of warp `w` that exist in a block of `n` threads.
unsigned int existing_lanes(unsigned int w, std::size_t n) {
    std::size_t base = static_cast<std::size_t>(w) * 32;
    std::size_t count = n - base < 32 ? n - base : 32;
    return count == 32 ? 0xffffffffu : ((1u << count) - 1);
}

// All lanes of `mask` have arrived: compute each one's result.
void complete_collective(BlockRun* r, unsigned int warp, unsigned int lanes) {
    Fiber* base = &r->fibers[static_cast<std::size_t>(warp) * 32];
    unsigned int ballot = 0;
    for (unsigned int l = 0; l < 32; ++l)
        if ((lanes >> l) & 1u) ballot |= (base[l].value != 0 ? 1u : 0u) << l;
    for (unsigned int l = 0; l < 32; ++l) {
        if (!((lanes >> l) & 1u)) continue;
        Fiber& f = base[l];
        int w = f.width;
        int seg = static_cast<int>(l) / w * w;  // first lane of this lane's segment
        int src = -1;
        switch (f.kind) {
            case SHFL_IDX: src = seg + ((f.arg % w) + w) % w; break;
            case SHFL_UP: src = static_cast<int>(l) - f.arg < seg ? static_cast<int>(l)
                                                                  : static_cast<int>(l) - f.arg; break;
            case SHFL_DOWN: src = static_cast<int>(l) + f.arg >= seg + w ? static_cast<int>(l)
                                                                         : static_cast<int>(l) + f.arg; break;
            case SHFL_XOR: {
                int t = static_cast<int>(l) ^ f.arg;
                src = (t >= seg && t < seg + w) ? t : static_cast<int>(l);
                break;
            }
            case BALLOT: f.result = ballot & lanes; break;
            case ANY: f.result = (ballot & lanes) != 0; break;
            case ALL: f.result = (ballot & lanes) == lanes; break;
            case SYNCWARP: f.result = 0; break;
        }
        if (src >= 0) {
            // Reading a lane that takes no part in the shuffle is undefined
            // on a GPU: give garbage, so a kernel relying on it goes wrong.
            bool ok = src < 32 && ((lanes >> src) & 1u);
            f.result = ok ? base[src].value : ~0ull;
        }
        if (&f != r->current) f.state = READY;
    }
}

}  // namespace

// ---------------------------------------------------------------------------
// What the kernels call.
void syncthreads() {
    BlockRun* r = tls_run;
    r->current->state = AT_BARRIER;
    yield_to_scheduler();
}

// ANCHOR: warp_collective
unsigned long long warp_collective(Collective kind, unsigned int mask, unsigned long long value,
                                   int arg, int width) {
    BlockRun* r = tls_run;
    Fiber* f = r->current;
    unsigned int lane = f->ts.lane, warp = f->ts.warp;
    if (!((mask >> lane) & 1u)) {
        block_error(r, "%s: thread %u (lane %u) calls it with mask 0x%08x, which leaves out its own lane",
                    kind_name(kind), f->ts.linear, lane, mask);
        yield_to_scheduler();
    }
    if (width <= 0 || width > 32 || (width & (width - 1)) != 0) {
        block_error(r, "%s: width %d is not a power of two in 1..32", kind_name(kind), width);
        yield_to_scheduler();
    }
    f->kind = kind;
    f->mask = mask;
    f->value = value;
    f->arg = arg;
    f->width = width;
    f->state = AT_WARP;
    unsigned int lanes = mask & existing_lanes(warp, r->fibers.size());
    Fiber* base = &r->fibers[static_cast<std::size_t>(warp) * 32];
    bool all_here = true;
    for (unsigned int l = 0; l < 32; ++l) {
        if (!((lanes >> l) & 1u)) continue;
        Fiber& o = base[l];
        if (o.state != AT_WARP) {
            all_here = false;
            continue;
        }
        if (o.kind != kind || o.mask != mask) {
            block_error(r,
                        "warp %u diverged: lane %u is at %s (mask 0x%08x) while lane %u is at %s "
                        "(mask 0x%08x)",
                        warp, l, kind_name(o.kind), o.mask, lane, kind_name(kind), mask);
            yield_to_scheduler();
        }
    }
    if (all_here) {
        complete_collective(r, warp, lanes);
        f->state = READY;
        return f->result;
    }
    yield_to_scheduler();
    return f->result;
}
// ANCHOR_END: warp_collective

[[noreturn]] void trap() {
    BlockRun* r = tls_run;
    const uint3& t = r->current->ts.thread_idx;
    block_error(r, "__trap() in thread (%u, %u, %u)", t.x, t.y, t.z);
    yield_to_scheduler();
    __builtin_unreachable();
}

int fail(const LaunchArgs* args, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    write_error(args, fmt, ap);
    va_end(ap);
    return 1;
}

namespace {

// Explains why no fiber of a block can go on.
void report_stuck(BlockRun* r) {
    std::size_t done = 0, barrier = 0, warp = 0;
    const Fiber* first_done = nullptr;
    const Fiber* first_warp = nullptr;
    for (const Fiber& f : r->fibers) {
        if (f.state == DONE) {
            ++done;
            if (!first_done) first_done = &f;
        } else if (f.state == AT_BARRIER) {
            ++barrier;
        } else if (f.state == AT_WARP) {
            ++warp;
            if (!first_warp) first_warp = &f;
        }
    }
    if (first_warp) {
        unsigned int lanes = first_warp->mask & existing_lanes(first_warp->ts.warp, r->fibers.size());
        const Fiber* base = &r->fibers[static_cast<std::size_t>(first_warp->ts.warp) * 32];
        for (unsigned int l = 0; l < 32; ++l) {
            if (!((lanes >> l) & 1u) || base[l].state == AT_WARP) continue;
            block_error(r,
                        "deadlock: lane %u of warp %u waits at %s (mask 0x%08x) for lane %u, "
                        "which %s",
                        first_warp->ts.lane, first_warp->ts.warp, kind_name(first_warp->kind),
                        first_warp->mask, l,
                        base[l].state == DONE ? "has returned" : "waits at __syncthreads()");
            return;
        }
    }
    block_error(r,
                "deadlock: %zu of %zu threads wait at __syncthreads() but thread %u has returned "
                "(%zu have): every thread of a block must reach every barrier",
                barrier, r->fibers.size(), first_done ? first_done->ts.linear : 0u, done);
}

// ANCHOR: run_block
// Runs one block to the end; false on failure.
bool run_block(BlockRun* r, const std::vector<std::size_t>& order) {
    const LaunchArgs* a = r->args;
    std::size_t n = r->fibers.size();
    unsigned int bx = a->block[0], by = a->block[1];
    for (std::size_t i = 0; i < n; ++i) {
        Fiber& f = r->fibers[i];
        f = Fiber{};
        unsigned int li = static_cast<unsigned int>(i);
        f.ts.thread_idx = uint3{li % bx, (li / bx) % by, li / (bx * by)};
        f.ts.linear = li;
        f.ts.lane = li % 32;
        f.ts.warp = li / 32;
        init_fiber(f, tls_stacks.stacks[i]);
    }
    // Fresh shared memory holds garbage on a GPU; here it holds NaNs.
    std::memset(candle_smem, kPoison, a->shared_mem_bytes + kSharedGuard);
    for (;;) {
        bool ran = false;
        for (std::size_t i : order) {
            Fiber& f = r->fibers[i];
            if (f.state != READY) continue;
            ran = true;
            r->current = &f;
            tls_thread = &f.ts;
            candle_emu_switch(&r->scheduler_sp, f.sp);
            if (r->failed) return false;
        }
        if (ran) continue;
        // Nobody is ready: everyone is done, at a barrier, or stuck.
        std::size_t done = 0, barrier = 0;
        for (const Fiber& f : r->fibers) {
            done += f.state == DONE;
            barrier += f.state == AT_BARRIER;
        }
        if (done == n) break;
        if (barrier == n) {
            for (Fiber& f : r->fibers) f.state = READY;
            continue;
        }
        report_stuck(r);
        return false;
    }
    for (unsigned int i = 0; i < kSharedGuard; ++i) {
        if (candle_smem[a->shared_mem_bytes + i] != kPoison) {
            block_error(r, "wrote dynamic shared memory at byte %u, past the %u bytes the launch gave",
                        a->shared_mem_bytes + i, a->shared_mem_bytes);
            return false;
        }
    }
    return true;
}
// ANCHOR_END: run_block

}  // namespace

int run_grid(const char* name, const LaunchArgs* a, void (*thunk)(void**), void** params) {
    unsigned long long threads =
        static_cast<unsigned long long>(a->block[0]) * a->block[1] * a->block[2];
    if (threads == 0 || threads > 1024)
        return fail(a, "%s: a block of (%u, %u, %u) threads; CUDA allows 1 to 1024", name,
                    a->block[0], a->block[1], a->block[2]);
    if (a->block[2] > 64)
        return fail(a, "%s: block z dimension %u exceeds 64", name, a->block[2]);
    if (a->grid[0] == 0 || a->grid[1] == 0 || a->grid[2] == 0 || a->grid[1] > 65535 ||
        a->grid[2] > 65535 || a->grid[0] > 0x7fffffffu)
        return fail(a, "%s: grid (%u, %u, %u) is empty or too large", name, a->grid[0], a->grid[1],
                    a->grid[2]);
    if (a->shared_mem_bytes > kMaxDynamicShared)
        return fail(a, "%s: %u bytes of dynamic shared memory; at most %u without opting in", name,
                    a->shared_mem_bytes, kMaxDynamicShared);
    if (!tls_stacks.ensure(threads)) return fail(a, "%s: cannot map fiber stacks", name);

    BlockRun run;
    run.name = name;
    run.args = a;
    run.thunk = thunk;
    run.params = params;
    run.fibers.resize(threads);
    BlockRun* saved = tls_run;
    tls_run = &run;
    tls_grid_dim = dim3{a->grid[0], a->grid[1], a->grid[2]};
    tls_block_dim = dim3{a->block[0], a->block[1], a->block[2]};

    std::vector<std::size_t> order(threads);
    for (std::size_t i = 0; i < threads; ++i) order[i] = i;
    if (a->schedule == 1)
        for (std::size_t i = 0; i < threads; ++i) order[i] = threads - 1 - i;

    bool ok = true;
    unsigned long long seed = a->seed;
    for (unsigned int z = 0; ok && z < a->grid[2]; ++z)
        for (unsigned int y = 0; ok && y < a->grid[1]; ++y)
            for (unsigned int x = 0; ok && x < a->grid[0]; ++x) {
                if (a->schedule == 2) {  // Fisher–Yates, a new order per block
                    for (std::size_t i = threads - 1; i > 0; --i) {
                        std::size_t j = static_cast<std::size_t>(mix64(seed) % (i + 1));
                        std::swap(order[i], order[j]);
                    }
                }
                tls_block_idx = uint3{x, y, z};
                ok = run_block(&run, order);
            }
    tls_run = saved;
    tls_thread = nullptr;
    if (!ok) {
        // Prefix the kernel's name to the message the block left.
        char msg[512];
        std::snprintf(msg, sizeof msg, "%s", a->error ? a->error : "");
        fail(a, "%s: %s", name, msg);
        return 1;
    }
    return 0;
}

}  // namespace candle_emu
