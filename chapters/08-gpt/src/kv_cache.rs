//! The KV cache: the keys and values of every position already seen, kept
//! so that generating a token costs one token's work.
//!
//! In causal attention, position `i`'s output depends on the queries at `i`
//! and on the keys and values at positions `0..=i`, and the keys and values
//! of a position depend only on the tokens up to it. So when a token is
//! appended, the keys and values of every earlier position are unchanged:
//! compute the new token's `k` and `v`, append them, and attend from its
//! query alone. Without a cache, generating `n` tokens recomputes the whole
//! prefix at every step (`O(n²)` token-forwards); with it, `O(n)`.
//!
//! The buffers are allocated once, to the full context length, and each new
//! position is written into them in place (chapter 03's `slice_assign_`):
//! no concatenation, no new allocation per token. Attention then reads a
//! view of the first `len` positions.

use chapter_02::{Error, Result, Tensor as RawTensor};
use chapter_03::{DType, Device, Tensor};
use chapter_04::prelude::*;

// ANCHOR: layer_cache
/// One attention layer's cache: keys and values `[batch, heads, capacity,
/// head_dim]`, of which the first `len` positions are filled.
pub struct LayerCache {
    k: Tensor,
    v: Tensor,
    len: usize,
}

impl LayerCache {
    fn new(dims: [usize; 4], dtype: DType, device: &Device) -> Result<Self> {
        Ok(LayerCache {
            k: Tensor::from_raw(RawTensor::zeros(dims.to_vec(), dtype, device)?),
            v: Tensor::from_raw(RawTensor::zeros(dims.to_vec(), dtype, device)?),
            len: 0,
        })
    }

    /// Positions filled.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes the keys and values of `T` new positions (`[batch, heads, T,
    /// head_dim]`) after the filled ones, in place, and returns views of
    /// all filled positions `[batch, heads, len + T, head_dim]` (the keys
    /// and values the new queries attend to). The cache holds values, not
    /// a graph: no gradient flows back through cached positions.
    pub fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let dims = self.k.dims();
        let t = k.dims().get(2).copied().unwrap_or(0);
        let expected = [dims[0], dims[1], t, dims[3]];
        for (name, new) in [("keys", k), ("values", v)] {
            if new.dims() != expected || new.dtype() != self.k.dtype() {
                return Err(Error::ShapeMismatch {
                    op: "KvCache::append",
                    lhs: expected.to_vec().into(),
                    rhs: new.shape(),
                    detail: format!(
                        " ({name} must be [batch, heads, T, head_dim] in {}, got {})",
                        self.k.dtype(),
                        new.dtype()
                    ),
                });
            }
        }
        let end = self.len + t;
        if end > dims[2] {
            return Err(Error::invalid(
                "KvCache::append",
                format!(
                    "the cache is full: it holds {} of {} positions (the context length) \
                     and cannot take {t} more",
                    self.len, dims[2]
                ),
            ));
        }
        let region = [0..dims[0], 0..dims[1], self.len..end, 0..dims[3]];
        self.k.slice_assign_(&region, &k.detach())?;
        self.v.slice_assign_(&region, &v.detach())?;
        self.len = end;
        Ok((self.k.narrow(2, 0, end)?, self.v.narrow(2, 0, end)?))
    }

    /// Whether the next [`append`](Self::append) writes into the existing
    /// buffers: true unless a view of them is still alive somewhere (then
    /// the write copies first, chapter 02's copy-on-write).
    pub fn writes_in_place(&self) -> bool {
        // Asked in place: `data()` would hand out a clone, itself a sharer.
        let unique = |t: &Tensor| {
            t.update_data(|d| Ok(d.is_storage_unique()))
                .unwrap_or(false)
        };
        unique(&self.k) && unique(&self.v)
    }
}
// ANCHOR_END: layer_cache

// ANCHOR: kv_cache
/// The caches of every layer of a model, preallocated to the context length.
pub struct KvCache {
    layers: Vec<LayerCache>,
    capacity: usize,
}

impl KvCache {
    /// Zeroed buffers `[batch, heads, capacity, head_dim]` for each of
    /// `layers` layers (allocated now, once).
    pub fn new(
        layers: usize,
        batch: usize,
        heads: usize,
        capacity: usize,
        head_dim: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        if batch == 0 || heads == 0 || capacity == 0 || head_dim == 0 {
            return Err(Error::invalid(
                "KvCache::new",
                format!(
                    "every size must be positive, got batch {batch}, heads {heads}, \
                     capacity {capacity}, head_dim {head_dim}"
                ),
            ));
        }
        let dims = [batch, heads, capacity, head_dim];
        let layers = (0..layers)
            .map(|_| LayerCache::new(dims, dtype, device))
            .collect::<Result<_>>()?;
        Ok(KvCache { layers, capacity })
    }

    /// Positions held (those of the first layer; after a full forward pass
    /// every layer holds the same number).
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, LayerCache::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most positions the cache can hold (the context length).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Layer `i`'s cache.
    pub fn layer_mut(&mut self, i: usize) -> Result<&mut LayerCache> {
        let n = self.layers.len();
        self.layers.get_mut(i).ok_or_else(|| {
            Error::invalid(
                "KvCache",
                format!("layer {i} does not exist (the cache has {n} layers)"),
            )
        })
    }

    /// Forgets every position from `len` on (the buffers stay). Speculative
    /// sampling rolls back rejected tokens this way, and chat drops turns;
    /// the positions before `len` are kept, so nothing is recomputed.
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        if len > self.len() {
            return Err(Error::invalid(
                "KvCache::truncate",
                format!(
                    "cannot keep {len} positions, the cache holds {}",
                    self.len()
                ),
            ));
        }
        for layer in &mut self.layers {
            layer.len = layer.len.min(len);
        }
        Ok(())
    }

    /// Forgets every position.
    pub fn reset(&mut self) {
        for layer in &mut self.layers {
            layer.len = 0;
        }
    }

    /// Whether every layer's next append writes in place (see
    /// [`LayerCache::writes_in_place`]).
    pub fn writes_in_place(&self) -> bool {
        self.layers.iter().all(LayerCache::writes_in_place)
    }
}
// ANCHOR_END: kv_cache
