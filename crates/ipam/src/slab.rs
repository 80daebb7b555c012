//! A vector with stable `u32` ids and a free list.
//!
//! Internal structures refer to each other by these ids (4 bytes) instead of by name or by
//! address, which keeps per-address memory small. Ids never leave the crate: records use names
//! and addresses.

#[derive(Debug, Clone)]
pub(crate) struct Slab<T> {
    items: Vec<Option<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            items: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

/// Ids are `u32`; the top values are kept as sentinels by the block slot arrays.
pub(crate) const MAX_ID: u32 = u32::MAX - 2;

impl<T> Slab<T> {
    /// Stores `value` and returns its id, or `None` if the id space is exhausted.
    pub(crate) fn insert(&mut self, value: T) -> Option<u32> {
        let id = match self.free.pop() {
            Some(id) => {
                self.items[id as usize] = Some(value);
                id
            }
            None => {
                let id = u32::try_from(self.items.len())
                    .ok()
                    .filter(|&id| id <= MAX_ID)?;
                self.items.push(Some(value));
                id
            }
        };
        self.len += 1;
        Some(id)
    }

    pub(crate) fn remove(&mut self, id: u32) -> Option<T> {
        let v = self.items.get_mut(id as usize)?.take()?;
        self.free.push(id);
        self.len -= 1;
        Some(v)
    }

    pub(crate) fn get(&self, id: u32) -> Option<&T> {
        self.items.get(id as usize)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        self.items.get_mut(id as usize)?.as_mut()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// One past the largest id ever handed out; parallel index vectors use this length.
    pub(crate) fn id_bound(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_ref().map(|v| (i as u32, v)))
    }

    /// Heap bytes of the slot array and free list (not of what `T` points to).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<Option<T>>() + self.free.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_ids() {
        let mut s = Slab::default();
        let a = s.insert("a").unwrap();
        let b = s.insert("b").unwrap();
        assert_eq!(s.remove(a), Some("a"));
        assert_eq!(s.get(a), None);
        assert_eq!(s.insert("c"), Some(a));
        assert_eq!(s.len(), 2);
        assert_eq!(
            s.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
            vec!["c", "b"]
        );
        assert_eq!(s.get(b), Some(&"b"));
    }
}
