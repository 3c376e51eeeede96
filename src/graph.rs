//! The task graph: dependencies, dependents, order, cycles, and the ready queue.
//!
//! Edges are stored twice in compressed form (each task's dependencies and each task's
//! dependents, as slices of one array), so walking either direction costs nothing per edge beyond
//! reading it. Cycles are found with petgraph's Tarjan SCC; each strongly connected component is
//! reported with one concrete cycle through it, in order.
//!
//! [`ReadyQueue`] is the scheduler's heart and is linear in tasks plus edges: every task holds a
//! counter of unfinished dependencies, a finished task decrements its dependents' counters, and a
//! task whose counter reaches zero enters a priority heap. Nothing ever rescans the pending set
//! (the mistake that made Luigi's scheduler quadratic).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Graph {
    dep_start: Vec<u32>,
    dep_list: Vec<u32>,
    rdep_start: Vec<u32>,
    rdep_list: Vec<u32>,
}

impl Graph {
    /// Build from each task's list of dependencies (task indices).
    pub fn new<I, D>(n: usize, deps: I) -> Graph
    where
        I: IntoIterator<Item = D>,
        D: IntoIterator<Item = usize>,
    {
        let mut dep_start = Vec::with_capacity(n + 1);
        let mut dep_list = Vec::new();
        dep_start.push(0);
        for d in deps {
            dep_list.extend(d.into_iter().map(|x| x as u32));
            dep_start.push(dep_list.len() as u32);
        }
        assert_eq!(dep_start.len(), n + 1, "one dependency list per task");
        let mut counts = vec![0u32; n + 1];
        for &d in &dep_list {
            counts[d as usize + 1] += 1;
        }
        for i in 0..n {
            counts[i + 1] += counts[i];
        }
        let rdep_start = counts.clone();
        let mut fill = counts;
        let mut rdep_list = vec![0u32; dep_list.len()];
        for t in 0..n {
            for &d in &dep_list[dep_start[t] as usize..dep_start[t + 1] as usize] {
                rdep_list[fill[d as usize] as usize] = t as u32;
                fill[d as usize] += 1;
            }
        }
        Graph {
            dep_start,
            dep_list,
            rdep_start,
            rdep_list,
        }
    }

    pub fn len(&self) -> usize {
        self.dep_start.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn edge_count(&self) -> usize {
        self.dep_list.len()
    }

    /// The tasks `t` requires.
    pub fn deps(&self, t: usize) -> &[u32] {
        &self.dep_list[self.dep_start[t] as usize..self.dep_start[t + 1] as usize]
    }

    /// The tasks that require `t`.
    pub fn dependents(&self, t: usize) -> &[u32] {
        &self.rdep_list[self.rdep_start[t] as usize..self.rdep_start[t + 1] as usize]
    }

    /// Every cycle, one per strongly connected component, as task indices in order: each
    /// requires the next, and the last requires the first.
    pub fn cycles(&self) -> Vec<Vec<usize>> {
        let has_self_loop = (0..self.len()).any(|t| self.deps(t).contains(&(t as u32)));
        let mut g: DiGraph<(), ()> = DiGraph::with_capacity(self.len(), self.edge_count());
        for _ in 0..self.len() {
            g.add_node(());
        }
        for t in 0..self.len() {
            for &d in self.deps(t) {
                g.add_edge(NodeIndex::new(t), NodeIndex::new(d as usize), ());
            }
        }
        let mut cycles = Vec::new();
        for scc in tarjan_scc(&g) {
            if scc.len() == 1 {
                let t = scc[0].index();
                if has_self_loop && self.deps(t).contains(&(t as u32)) {
                    cycles.push(vec![t]);
                }
                continue;
            }
            let members: std::collections::HashSet<usize> = scc.iter().map(|n| n.index()).collect();
            let start = scc.iter().map(|n| n.index()).min().expect("non-empty component");
            cycles.push(self.cycle_through(start, &members));
        }
        cycles.sort();
        cycles
    }

    /// A shortest path from `start` back to itself inside `members` (breadth-first).
    fn cycle_through(&self, start: usize, members: &std::collections::HashSet<usize>) -> Vec<usize> {
        let mut parent = std::collections::HashMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(t) = queue.pop_front() {
            for &d in self.deps(t) {
                let d = d as usize;
                if d == start {
                    let mut path = vec![t];
                    let mut cur = t;
                    while cur != start {
                        cur = parent[&cur];
                        path.push(cur);
                    }
                    path.reverse();
                    return path;
                }
                if members.contains(&d) && !parent.contains_key(&d) {
                    parent.insert(d, t);
                    queue.push_back(d);
                }
            }
        }
        vec![start]
    }

    /// Tasks in an order where every task comes after all it requires (Kahn's algorithm, ties
    /// broken by declaration order). The graph is acyclic once a pipeline has loaded.
    pub fn topological_order(&self) -> Vec<usize> {
        let mut q = ReadyQueue::new(self, |_| false, |t| (0, t));
        let mut order = Vec::with_capacity(self.len());
        while let Some(t) = q.pop() {
            order.push(t);
            q.complete(self, t);
        }
        order
    }

    /// Every task that depends on `roots`, directly or transitively (roots excluded), in index
    /// order.
    pub fn downstream(&self, roots: &[usize]) -> Vec<usize> {
        self.closure(roots, |t| self.dependents(t))
    }

    /// Every task that `roots` depend on, directly or transitively (roots excluded).
    pub fn upstream(&self, roots: &[usize]) -> Vec<usize> {
        self.closure(roots, |t| self.deps(t))
    }

    fn closure<'a>(&'a self, roots: &[usize], next: impl Fn(usize) -> &'a [u32]) -> Vec<usize> {
        let mut seen = vec![false; self.len()];
        let mut stack: Vec<usize> = roots.to_vec();
        for &r in roots {
            seen[r] = true;
        }
        let mut out = Vec::new();
        while let Some(t) = stack.pop() {
            for &n in next(t) {
                let n = n as usize;
                if !seen[n] {
                    seen[n] = true;
                    out.push(n);
                    stack.push(n);
                }
            }
        }
        out.sort_unstable();
        out
    }
}

/// Tasks whose dependencies are all satisfied, highest priority first, then declaration order.
pub struct ReadyQueue {
    waiting_on: Vec<u32>,
    heap: BinaryHeap<(i64, Reverse<usize>)>,
    priority: Vec<i64>,
}

impl ReadyQueue {
    /// `satisfied(t)`: t needs no work and counts as finished for its dependents (done, or out
    /// of scope). `priority(t)` returns (priority, t).
    pub fn new(
        graph: &Graph,
        satisfied: impl Fn(usize) -> bool,
        priority: impl Fn(usize) -> (i64, usize),
    ) -> ReadyQueue {
        let n = graph.len();
        let mut waiting_on = vec![0u32; n];
        let mut prio = vec![0i64; n];
        let mut heap = BinaryHeap::new();
        let sat: Vec<bool> = (0..n).map(&satisfied).collect();
        for t in 0..n {
            prio[t] = priority(t).0;
            if sat[t] {
                waiting_on[t] = u32::MAX;
                continue;
            }
            waiting_on[t] = graph.deps(t).iter().filter(|&&d| !sat[d as usize]).count() as u32;
            if waiting_on[t] == 0 {
                heap.push((prio[t], Reverse(t)));
            }
        }
        ReadyQueue {
            waiting_on,
            heap,
            priority: prio,
        }
    }

    pub fn pop(&mut self) -> Option<usize> {
        self.heap.pop().map(|(_, Reverse(t))| t)
    }

    /// Put back a task that was popped but could not start yet.
    pub fn push_back(&mut self, t: usize) {
        self.heap.push((self.priority[t], Reverse(t)));
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// `t` finished successfully: release the dependents that were waiting only on it.
    pub fn complete(&mut self, graph: &Graph, t: usize) {
        for &d in graph.dependents(t) {
            let w = &mut self.waiting_on[d as usize];
            if *w == u32::MAX {
                continue;
            }
            *w -= 1;
            if *w == 0 {
                self.heap.push((self.priority[d as usize], Reverse(d as usize)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(deps: &[&[usize]]) -> Graph {
        Graph::new(deps.len(), deps.iter().map(|d| d.iter().copied()))
    }

    #[test]
    fn dependents_mirror_deps() {
        let g = g(&[&[], &[0], &[0], &[1, 2]]);
        assert_eq!(g.dependents(0), &[1, 2]);
        assert_eq!(g.dependents(1), &[3]);
        assert_eq!(g.deps(3), &[1, 2]);
        assert_eq!(g.topological_order(), vec![0, 1, 2, 3]);
        assert_eq!(g.downstream(&[1]), vec![3]);
        assert_eq!(g.upstream(&[3]), vec![0, 1, 2]);
    }

    #[test]
    fn finds_every_cycle_in_order() {
        // 0 -> 1 -> 2 -> 0, 3 -> 3, 4 -> 5 -> 4; 6 is fine.
        let g = g(&[&[1], &[2], &[0], &[3], &[5], &[4], &[0]]);
        assert_eq!(g.cycles(), vec![vec![0, 1, 2], vec![3], vec![4, 5]]);
    }

    #[test]
    fn ready_queue_honours_priority_then_declaration_order() {
        let g = g(&[&[], &[], &[], &[0]]);
        let prio = [0, 5, 0, 9];
        let mut q = ReadyQueue::new(&g, |_| false, |t| (prio[t], t));
        assert_eq!(q.pop(), Some(1));
        assert_eq!(q.pop(), Some(0));
        q.complete(&g, 0);
        assert_eq!(q.pop(), Some(3));
        assert_eq!(q.pop(), Some(2));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn satisfied_tasks_release_their_dependents_up_front() {
        let g = g(&[&[], &[0], &[1]]);
        let mut q = ReadyQueue::new(&g, |t| t == 0, |t| (0, t));
        assert_eq!(q.pop(), Some(1));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn large_chain_is_linear() {
        let n = 200_000;
        let deps: Vec<Vec<usize>> = (0..n)
            .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
            .collect();
        let g = Graph::new(n, deps);
        assert_eq!(g.topological_order().len(), n);
        assert!(g.cycles().is_empty());
    }
}
