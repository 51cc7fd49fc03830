//! The by-value reference graph of the schema's types: what each entity refers to,
//! Tarjan's strongly connected components (a reference inside one needs a `Box`), and
//! which types can derive `Eq`.

use qapi_parser::{Builtin, EntityKind, Schema, TypeId};

pub(super) struct Graph<'a> {
    s: &'a Schema,
    /// Strongly connected component of each entity over by-value references.
    scc: Vec<usize>,
    /// Size of each component.
    scc_size: Vec<usize>,
    /// Whether the type contains no `f64` or JSON value (so it can derive `Eq`).
    eq: Vec<Option<bool>>,
}

impl<'a> Graph<'a> {
    pub(super) fn new(s: &'a Schema) -> Self {
        let n = s.entities.len();
        let mut g = Graph {
            s,
            scc: vec![0; n],
            scc_size: vec![0; n],
            eq: vec![None; n],
        };
        g.sccs();
        for &c in &g.scc {
            g.scc_size[c] += 1;
        }
        g
    }

    /// The entities `id` refers to; through arrays too when `through_arrays`.
    pub(super) fn refs(&self, id: TypeId, through_arrays: bool) -> Vec<TypeId> {
        let mut out = Vec::new();
        match &self.s.entity(id).kind {
            EntityKind::Object(o) => {
                out.extend(o.base);
                out.extend(o.local_members.iter().map(|m| m.ty));
                if let Some(v) = &o.variants {
                    out.extend(v.variants.iter().map(|v| v.ty));
                }
            }
            EntityKind::Alternate(a) => out.extend(a.variants.iter().map(|v| v.ty)),
            EntityKind::Array(a) if through_arrays => out.push(a.element),
            EntityKind::Command(c) => {
                out.extend(c.arg_type);
                out.extend(c.ret_type);
            }
            EntityKind::Event(e) => out.extend(e.arg_type),
            _ => {}
        }
        out
    }

    /// Tarjan's strongly connected components over by-value references (not through
    /// arrays): a reference inside the same component needs a `Box`.
    fn sccs(&mut self) {
        let n = self.scc.len();
        let mut index = vec![usize::MAX; n];
        let mut low = vec![0usize; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut next = 0usize;
        let mut comp = 0usize;
        for root in 0..n {
            if index[root] != usize::MAX {
                continue;
            }
            // Iterative DFS: (node, its successors, next successor position).
            let mut work: Vec<(usize, Vec<usize>, usize)> = Vec::new();
            index[root] = next;
            low[root] = next;
            next += 1;
            stack.push(root);
            on_stack[root] = true;
            let succ = self.succ(root);
            work.push((root, succ, 0));
            while let Some((v, succ, pos)) = work.last_mut() {
                let v = *v;
                if *pos < succ.len() {
                    let w = succ[*pos];
                    *pos += 1;
                    if index[w] == usize::MAX {
                        index[w] = next;
                        low[w] = next;
                        next += 1;
                        stack.push(w);
                        on_stack[w] = true;
                        let s = self.succ(w);
                        work.push((w, s, 0));
                    } else if on_stack[w] {
                        low[v] = low[v].min(index[w]);
                    }
                } else {
                    work.pop();
                    if let Some((p, _, _)) = work.last() {
                        low[*p] = low[*p].min(low[v]);
                    }
                    if low[v] == index[v] {
                        while let Some(w) = stack.pop() {
                            on_stack[w] = false;
                            self.scc[w] = comp;
                            if w == v {
                                break;
                            }
                        }
                        comp += 1;
                    }
                }
            }
        }
    }

    fn succ(&self, i: usize) -> Vec<usize> {
        self.refs(TypeId(i as u32), false)
            .into_iter()
            .map(|t| t.0 as usize)
            .filter(|&t| t < self.scc.len())
            .collect()
    }

    pub(super) fn self_recursive(&self, from: TypeId, to: TypeId) -> bool {
        let (f, t) = (from.0 as usize, to.0 as usize);
        if f >= self.scc.len() || t >= self.scc.len() || self.scc[f] != self.scc[t] {
            return false;
        }
        // A one-entity component is recursive only through a self-reference.
        f != t || self.scc_size[self.scc[f]] > 1 || self.succ(f).contains(&t)
    }

    /// Whether the type can derive `Eq`: no `f64` or JSON value anywhere inside.
    pub(super) fn eq(&mut self, id: TypeId) -> bool {
        let i = id.0 as usize;
        if let Some(v) = self.eq.get(i).copied().flatten() {
            return v;
        }
        // Assume yes while visiting, so cycles terminate.
        self.eq[i] = Some(true);
        let v = match &self.s.entity(id).kind {
            EntityKind::Builtin(b) => !matches!(b, Builtin::Number | Builtin::Any),
            _ => {
                let refs = self.refs(id, true);
                refs.into_iter().all(|r| self.eq(r))
            }
        };
        self.eq[i] = Some(v);
        v
    }
}
