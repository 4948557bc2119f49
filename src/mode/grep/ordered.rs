//! An ordered parallel map: work units run on several threads, results are consumed on the
//! calling thread strictly in unit order, so grep's output is deterministic (file order, then
//! line order) however the threads interleave.
//!
//! Workers take units in increasing order and never run more than `window` units ahead of the
//! consumer, which bounds the memory held by finished-but-not-yet-printed results.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

struct State<T> {
    done: BTreeMap<usize, T>,
    consumed: usize,
}

/// Runs `work(i)` for `i in 0..n` on `threads` threads and calls `consume(i, result)` in order
/// on this thread. `consume` returning an error sets `cancel` (which `work` should watch, to
/// stop reading early), lets the workers finish, and returns the error. `on_panic` turns a
/// panicking unit into a result so the consumer never waits for a unit that will not come.
pub fn run<T, E>(
    n: usize,
    threads: usize,
    window: usize,
    cancel: &AtomicBool,
    work: impl Fn(usize) -> T + Sync,
    on_panic: impl Fn(usize) -> T + Sync,
    mut consume: impl FnMut(usize, T) -> Result<(), E>,
) -> Result<(), E>
where
    T: Send,
{
    let threads = threads.clamp(1, n.max(1));
    let window = window.max(threads);
    let next = AtomicUsize::new(0);
    let state = Mutex::new(State {
        done: BTreeMap::new(),
        consumed: 0,
    });
    let changed = Condvar::new();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= n {
                        return;
                    }
                    {
                        let mut st = state.lock().unwrap();
                        while i >= st.consumed + window && !cancel.load(Ordering::SeqCst) {
                            st = changed.wait(st).unwrap();
                        }
                    }
                    let r = if cancel.load(Ordering::SeqCst) {
                        on_panic(i)
                    } else {
                        catch_unwind(AssertUnwindSafe(|| work(i))).unwrap_or_else(|_| on_panic(i))
                    };
                    state.lock().unwrap().done.insert(i, r);
                    changed.notify_all();
                }
            });
        }
        let mut result = Ok(());
        for i in 0..n {
            let r = {
                let mut st = state.lock().unwrap();
                loop {
                    if let Some(r) = st.done.remove(&i) {
                        st.consumed = i + 1;
                        break r;
                    }
                    st = changed.wait(st).unwrap();
                }
            };
            changed.notify_all();
            if result.is_ok()
                && let Err(e) = consume(i, r)
            {
                cancel.store(true, Ordering::SeqCst);
                changed.notify_all();
                result = Err(e);
            }
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_order() {
        let cancel = AtomicBool::new(false);
        let mut seen = Vec::new();
        run::<_, ()>(
            50,
            4,
            3,
            &cancel,
            |i| {
                // Later units finish first.
                std::thread::sleep(std::time::Duration::from_micros(((50 - i) * 20) as u64));
                i * 10
            },
            |_| usize::MAX,
            |i, r| {
                seen.push((i, r));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, (0..50).map(|i| (i, i * 10)).collect::<Vec<_>>());
    }

    #[test]
    fn an_error_cancels_and_panics_become_results() {
        let cancel = AtomicBool::new(false);
        let mut seen = Vec::new();
        let r = run(
            20,
            2,
            2,
            &cancel,
            |i| {
                if i == 1 {
                    panic!("unit 1");
                }
                i
            },
            |_| 999,
            |i, r| {
                seen.push(r);
                if i == 3 { Err("closed") } else { Ok(()) }
            },
        );
        assert_eq!(r, Err("closed"));
        assert_eq!(&seen[..4], &[0, 999, 2, 3]);
        assert!(cancel.load(Ordering::SeqCst));
    }
}
