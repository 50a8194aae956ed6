// Indexing kernels: embedding lookups, index_select, gather, and their
// adjoints, which add instead of copy: embedding_backward, index_add,
// scatter_add.
//
// Indices are `long long` (i64), read through a view like any tensor. An
// index outside its dimension is never followed: the element is skipped
// (a copy writes 0 there) and the index is written to `*error`, a
// `long long` in device memory that the backend sets to −1 before the
// launch and reads afterwards, reporting `Error::Device` if it changed.
// When several indices are bad, `*error` holds one of them.
//
// The adjoints run one thread per *source* element and add into the
// destination with `atomicAdd`: two source elements may land on the same
// destination (a token seen twice in a batch), and their adds must not
// overwrite each other. The destination arrives already holding the base
// values (the backend copies `base` into it, or zeroes it for
// embedding_backward). Atomic adds happen in no fixed order, so float
// results may differ in the last bits from run to run.
#include "candle.cuh"

// ANCHOR: atomic_add
// `atomicAdd` for each element type. CUDA has it for float, double and
// unsigned long long (an i64 adds the same bits: two's complement). For
// the 16-bit halves, the containing aligned 32-bit word is updated with a
// compare-and-swap loop: read it, add into our half, and try to write it
// back unless someone changed it meanwhile.
template <typename T>
struct AtomicAdd;
template <>
struct AtomicAdd<float> {
    __device__ static void add(float* p, float v) { atomicAdd(p, v); }
};
template <>
struct AtomicAdd<double> {
    __device__ static void add(double* p, double v) { atomicAdd(p, v); }
};
template <>
struct AtomicAdd<long long> {
    __device__ static void add(long long* p, long long v) {
        atomicAdd(reinterpret_cast<unsigned long long*>(p), (unsigned long long)v);
    }
};
template <typename H>
__device__ void atomic_add_half(unsigned short* p, float v) {
    unsigned long long addr = (unsigned long long)p;
    unsigned int* word = reinterpret_cast<unsigned int*>(addr & ~3ull);
    unsigned int shift = (addr & 2ull) ? 16u : 0u;
    unsigned int old = *word, assumed;
    do {
        assumed = old;
        unsigned short h = (unsigned short)(assumed >> shift);
        unsigned short sum = Elem<H>::store(Elem<H>::load(h) + v);
        unsigned int next = (assumed & ~(0xffffu << shift)) | ((unsigned int)sum << shift);
        old = atomicCAS(word, assumed, next);
    } while (old != assumed);
}
template <>
struct AtomicAdd<f16_t> {
    __device__ static void add(unsigned short* p, float v) { atomic_add_half<f16_t>(p, v); }
};
template <>
struct AtomicAdd<bf16_t> {
    __device__ static void add(unsigned short* p, float v) { atomic_add_half<bf16_t>(p, v); }
};
// ANCHOR_END: atomic_add

// ANCHOR: embedding
// Kernel `embedding_<dtype>(long long n_ids, long long dim,
//     const long long* ids, const T* table, long long vocab, T* out,
//     long long* error)`: `out[i][c] = table[ids[i]][c]` for a contiguous
// `[vocab, dim]` table and `n_ids` contiguous ids; one thread per output
// element, so a warp reads 32 consecutive columns of one row.
template <typename T>
__device__ void embedding_kernel(long long n_ids, long long dim, const long long* ids,
                                 const typename Elem<T>::Storage* table, long long vocab,
                                 typename Elem<T>::Storage* out, long long* error) {
    CANDLE_GRID_STRIDE(i, n_ids * dim) {
        long long id = ids[i / dim];
        if (id < 0 || id >= vocab) {
            *error = id;
            out[i] = Elem<T>::from_f64(0.0);
        } else {
            out[i] = table[id * dim + i % dim];
        }
    }
}

// Kernel `embedding_backward_<dtype>(long long n_ids, long long dim,
//     const long long* ids, const T* grad_out, long long vocab,
//     T* grad_table, long long* error)`: `grad_table[ids[i]][c] +=
// grad_out[i][c]`, into a `grad_table` the backend zeroed.
template <typename T>
__device__ void embedding_backward_kernel(long long n_ids, long long dim, const long long* ids,
                                          const typename Elem<T>::Storage* grad_out,
                                          long long vocab, typename Elem<T>::Storage* grad_table,
                                          long long* error) {
    CANDLE_GRID_STRIDE(i, n_ids * dim) {
        long long id = ids[i / dim];
        if (id < 0 || id >= vocab) {
            *error = id;
        } else {
            AtomicAdd<T>::add(grad_table + id * dim + i % dim, Elem<T>::load(grad_out[i]));
        }
    }
}
// ANCHOR_END: embedding

// ANCHOR: index_views
// The general kernels take exact (unmerged) views, since the dimension
// `dim` must stay where it is: `Strided` rank, shape and strides as the
// tensor has them. `coords_offset` walks the coordinates of element `i` of
// `shape` and returns its offset in `v`, with the coordinate along `dim`
// replaced by `at` (when `at >= 0`); `coord_of` gives one coordinate.
__device__ __forceinline__ long long coord_of(const Strided& shape, long long i, int d) {
    for (int k = shape.rank - 1; k > d; --k) i /= shape.shape[k];
    return i % shape.shape[d];
}
__device__ __forceinline__ long long coords_offset(const Strided& shape, long long i, const Strided& v,
                                                   int dim, long long at) {
    long long off = v.offset;
    for (int k = shape.rank - 1; k >= 0; --k) {
        long long c = i % shape.shape[k];
        i /= shape.shape[k];
        off += (k == dim && at >= 0 ? at : c) * v.strides[k];
    }
    return off;
}
// ANCHOR_END: index_views

// ANCHOR: index_select
// Kernel `index_select_<dtype>(long long n, Strided src, const T* x,
//     Strided ids, const long long* id, int dim, Strided out_shape, T* out,
//     long long* error)`: `out[.., i, ..] = x[.., id[i], ..]` along `dim`,
// `out` contiguous of `out_shape` (the source's shape with `dim` resized to
// the number of ids), `ids` a 1-D view, `n` the output's element count.
template <typename T>
__device__ void index_select_kernel(long long n, Strided src, const typename Elem<T>::Storage* x,
                                    Strided ids, const long long* id, int dim, Strided out_shape,
                                    typename Elem<T>::Storage* out, long long* error) {
    CANDLE_GRID_STRIDE(i, n) {
        long long k = coord_of(out_shape, i, dim);
        long long j = id[ids.offset + k * ids.strides[0]];
        if (j < 0 || j >= src.shape[dim]) {
            *error = j;
            out[i] = Elem<T>::from_f64(0.0);
        } else {
            out[i] = x[coords_offset(out_shape, i, src, dim, j)];
        }
    }
}

// Kernel `gather_<dtype>(long long n, Strided src, const T* x,
//     Strided ids, const long long* id, int dim, T* out, long long* error)`:
// `out[c] = x[c with c[dim] = id[c]]` for every coordinate `c` of `ids`;
// `out` is contiguous with the shape of `ids`.
template <typename T>
__device__ void gather_kernel(long long n, Strided src, const typename Elem<T>::Storage* x,
                              Strided ids, const long long* id, int dim,
                              typename Elem<T>::Storage* out, long long* error) {
    CANDLE_GRID_STRIDE(i, n) {
        long long j = id[coords_offset(ids, i, ids, dim, -1)];
        if (j < 0 || j >= src.shape[dim]) {
            *error = j;
            out[i] = Elem<T>::from_f64(0.0);
        } else {
            out[i] = x[coords_offset(ids, i, src, dim, j)];
        }
    }
}
// ANCHOR_END: index_select

// ANCHOR: scatter_add
// Kernel `scatter_add_<dtype>(long long n, Strided ids, const long long* id,
//     Strided src, const T* s, int dim, Strided out, T* o,
//     long long* error)`: `o[c with c[dim] = id[c]] += s[c]` for every
// coordinate `c` of `ids` (and `src`, of the same shape); `out` describes
// the destination (the base's shape, contiguous strides).
template <typename T>
__device__ void scatter_add_kernel(long long n, Strided ids, const long long* id, Strided src,
                                   const typename Elem<T>::Storage* s, int dim, Strided out,
                                   typename Elem<T>::Storage* o, long long* error) {
    CANDLE_GRID_STRIDE(i, n) {
        long long j = id[coords_offset(ids, i, ids, dim, -1)];
        if (j < 0 || j >= out.shape[dim]) {
            *error = j;
        } else {
            AtomicAdd<T>::add(o + coords_offset(ids, i, out, dim, j),
                              Elem<T>::load(s[coords_offset(ids, i, src, dim, -1)]));
        }
    }
}

// Kernel `index_add_<dtype>(long long n, Strided src, const T* s,
//     Strided ids, const long long* id, int dim, Strided out, T* o,
//     long long* error)`: `o[.., id[i], ..] += s[.., i, ..]` along `dim`,
// one thread per element of `src` (`n` of them); `ids` a 1-D view.
template <typename T>
__device__ void index_add_kernel(long long n, Strided src, const typename Elem<T>::Storage* s,
                                 Strided ids, const long long* id, int dim, Strided out,
                                 typename Elem<T>::Storage* o, long long* error) {
    CANDLE_GRID_STRIDE(i, n) {
        long long k = coord_of(src, i, dim);
        long long j = id[ids.offset + k * ids.strides[0]];
        if (j < 0 || j >= out.shape[dim]) {
            *error = j;
        } else {
            AtomicAdd<T>::add(o + coords_offset(src, i, out, dim, j),
                              Elem<T>::load(s[coords_offset(src, i, src, dim, -1)]));
        }
    }
}
// ANCHOR_END: scatter_add

#define INDEX_COPY(suffix, T)                                                                     \
    extern "C" __global__ void embedding_##suffix(long long n_ids, long long dim,                 \
                                                  const long long* ids,                           \
                                                  const Elem<T>::Storage* table, long long vocab, \
                                                  Elem<T>::Storage* out, long long* error) {      \
        embedding_kernel<T>(n_ids, dim, ids, table, vocab, out, error);                           \
    }                                                                                             \
    CANDLE_KERNEL(embedding_##suffix)                                                             \
    extern "C" __global__ void index_select_##suffix(                                             \
        long long n, Strided src, const Elem<T>::Storage* x, Strided ids, const long long* id,    \
        int dim, Strided out_shape, Elem<T>::Storage* out, long long* error) {                    \
        index_select_kernel<T>(n, src, x, ids, id, dim, out_shape, out, error);                   \
    }                                                                                             \
    CANDLE_KERNEL(index_select_##suffix)                                                          \
    extern "C" __global__ void gather_##suffix(long long n, Strided src,                          \
                                               const Elem<T>::Storage* x, Strided ids,            \
                                               const long long* id, int dim,                      \
                                               Elem<T>::Storage* out, long long* error) {         \
        gather_kernel<T>(n, src, x, ids, id, dim, out, error);                                    \
    }                                                                                             \
    CANDLE_KERNEL(gather_##suffix)
CANDLE_FOR_ALL_DTYPES(INDEX_COPY)

#define INDEX_ADD(suffix, T)                                                                      \
    extern "C" __global__ void embedding_backward_##suffix(                                       \
        long long n_ids, long long dim, const long long* ids, const Elem<T>::Storage* grad_out,   \
        long long vocab, Elem<T>::Storage* grad_table, long long* error) {                        \
        embedding_backward_kernel<T>(n_ids, dim, ids, grad_out, vocab, grad_table, error);        \
    }                                                                                             \
    CANDLE_KERNEL(embedding_backward_##suffix)                                                    \
    extern "C" __global__ void scatter_add_##suffix(                                              \
        long long n, Strided ids, const long long* id, Strided src, const Elem<T>::Storage* s,    \
        int dim, Strided out, Elem<T>::Storage* o, long long* error) {                            \
        scatter_add_kernel<T>(n, ids, id, src, s, dim, out, o, error);                            \
    }                                                                                             \
    CANDLE_KERNEL(scatter_add_##suffix)                                                           \
    extern "C" __global__ void index_add_##suffix(                                                \
        long long n, Strided src, const Elem<T>::Storage* s, Strided ids, const long long* id,    \
        int dim, Strided out, Elem<T>::Storage* o, long long* error) {                            \
        index_add_kernel<T>(n, src, s, ids, id, dim, out, o, error);                              \
    }                                                                                             \
    CANDLE_KERNEL(index_add_##suffix)
CANDLE_FOR_FLOAT_DTYPES(INDEX_ADD)
INDEX_ADD(i64, long long)
