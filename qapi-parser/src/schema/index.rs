//! The builder's indexes: names to entities, interned C names, and modules (named by
//! their path relative to the main file, as Python's `os.path.relpath`).

use super::*;

/// A fast, non-cryptographic hasher (FxHash's mixing) for the builder's maps: the
/// keys are schema names and small ids, and hashing dominates their cost.
#[derive(Default, Clone, Copy)]
pub(super) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(SEED);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(SEED);
        }
    }
    fn write_u32(&mut self, i: u32) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(super) type HashMap<Key, Value> =
    std::collections::HashMap<Key, Value, BuildHasherDefault<FxHasher>>;
pub(super) type HashSet<Key> = std::collections::HashSet<Key, BuildHasherDefault<FxHasher>>;

/// Name -> entity id without a second copy of the names (the entities hold them):
/// a name's hash maps to the last entity with that hash, and `older` links an
/// entity to the previous one sharing its hash (rare: verified by comparing names).
#[derive(Default)]
pub(super) struct NameIndex {
    pub(super) last: HashMap<u64, u32>,
    pub(super) older: HashMap<u32, u32>,
    /// Every indexed id, in insertion order.
    pub(super) ids: Vec<u32>,
}

impl NameIndex {
    pub(super) fn hash(name: &str) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = FxHasher::default();
        name.hash(&mut h);
        h.finish()
    }

    pub(super) fn with_capacity(n: usize) -> Self {
        NameIndex {
            last: HashMap::with_capacity_and_hasher(n, Default::default()),
            older: HashMap::default(),
            ids: Vec::with_capacity(n),
        }
    }

    pub(super) fn get(&self, entities: &[Entity], name: &str) -> Option<u32> {
        let mut id = *self.last.get(&Self::hash(name))?;
        loop {
            if entities.get(id as usize).is_some_and(|e| e.name == name) {
                return Some(id);
            }
            id = *self.older.get(&id)?;
        }
    }

    /// Indexes `id` under `name` (not indexed yet).
    pub(super) fn insert(&mut self, name: &str, id: u32) {
        if let Some(prev) = self.last.insert(Self::hash(name), id) {
            self.older.insert(id, prev);
        }
        self.ids.push(id);
    }
}

/// Interned C names, stored end to end in one string (one allocation instead of
/// one per name), found by hash like [`NameIndex`].
#[derive(Default)]
pub(super) struct CNames {
    pub(super) last: HashMap<u64, u32>,
    pub(super) older: HashMap<u32, u32>,
    pub(super) text: String,
    /// End of each name in `text`; its id is its index.
    pub(super) ends: Vec<usize>,
}

impl CNames {
    pub(super) fn name(&self, id: u32) -> &str {
        // Ids come from `intern` only, and names are whole `str`s: in range.
        let end = self.ends[id as usize];
        let start = match id {
            0 => 0,
            _ => self.ends[id as usize - 1],
        };
        &self.text[start..end]
    }

    pub(super) fn get(&self, name: &str) -> Option<u32> {
        let mut id = *self.last.get(&NameIndex::hash(name))?;
        loop {
            if self.name(id) == name {
                return Some(id);
            }
            id = *self.older.get(&id)?;
        }
    }

    pub(super) fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.get(name) {
            return id;
        }
        let id = self.ends.len() as u32;
        self.text.push_str(name);
        self.ends.push(self.text.len());
        if let Some(prev) = self.last.insert(NameIndex::hash(name), id) {
            self.older.insert(id, prev);
        }
        id
    }
}

pub(super) fn dirname(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "",
    }
}

/// Lexically normalised components; a leading `/` is kept as a component.
pub(super) fn components(path: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let absolute = path.starts_with('/');
    if absolute {
        out.push("/");
    }
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => match out.last() {
                Some(&"/") => {}
                Some(&"..") | None => out.push(".."),
                Some(_) => {
                    out.pop();
                }
            },
            c => out.push(c),
        }
    }
    out
}

/// Python's `os.path.relpath(path, start)` for paths sharing a base (both relative
/// to the working directory, or both absolute).
pub(super) fn relpath(path: &str, start: &str) -> String {
    let p = components(path);
    let s = components(start);
    let common = p.iter().zip(&s).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; s.len() - common];
    parts.extend(&p[common..]);
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

impl Builder<'_> {
    pub(super) fn make_module_named(&mut self, name: String) -> u32 {
        if let Some(&m) = self.module_by_name.get(&name) {
            return m;
        }
        let id = self.modules.len() as u32;
        self.module_by_name.insert(name.clone(), id);
        self.modules.push(name);
        id
    }

    pub(super) fn module_name(&self, file: &str) -> String {
        relpath(file, &self.main_dir)
    }

    pub(super) fn make_module(&mut self, file: &str) -> u32 {
        let name = self.module_name(file);
        self.make_module_named(name)
    }

    /// The module of the file an info points into (builtin for `None`).
    pub(super) fn module_of(&mut self, info: Option<InfoId>) -> u32 {
        let Some(info) = info else { return 0 };
        let file: &Rc<str> = &self.infos.get(info).file;
        let key = file.as_ptr();
        if let Some(&(_, m)) = self.module_by_file.iter().find(|(k, _)| *k == key) {
            return m;
        }
        let name = self.module_name(file);
        let m = self.make_module_named(name);
        self.module_by_file.push((key, m));
        m
    }
}
