//! Connection threads, reused: every connection still gets a thread of its own for as long
//! as it lasts, but a thread that finished one waits for the next instead of exiting, since
//! starting a thread costs more than serving a plugin call.

use std::io;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

use super::server::lock;

/// Idle threads kept beyond this many exit instead.
const MAX_IDLE: usize = 64;

enum Job<T> {
    Run(T),
    Stop,
}

struct Idle<T> {
    stopped: bool,
    /// One sender per idle thread.
    threads: Vec<Sender<Job<T>>>,
}

type Handler<T> = Arc<dyn Fn(T) + Send + Sync>;

/// Runs `handler(item)` for each item on a thread of its own; stopped (idle threads exit,
/// busy ones exit when done) when dropped.
pub(crate) struct Workers<T> {
    handler: Handler<T>,
    idle: Arc<Mutex<Idle<T>>>,
}

impl<T: Send + 'static> Workers<T> {
    pub(crate) fn new(handler: impl Fn(T) + Send + Sync + 'static) -> Self {
        Workers {
            handler: Arc::new(handler),
            idle: Arc::new(Mutex::new(Idle {
                stopped: false,
                threads: Vec::new(),
            })),
        }
    }

    /// Hands `item` to an idle thread, or to a new one when none is idle.
    pub(crate) fn run(&self, mut item: T) -> io::Result<()> {
        loop {
            let Some(thread) = lock(&self.idle).threads.pop() else {
                break;
            };
            match thread.send(Job::Run(item)) {
                Ok(()) => return Ok(()),
                // That thread is gone; take the item back and try another.
                Err(err) => match err.0 {
                    Job::Run(back) => item = back,
                    Job::Stop => return Ok(()),
                },
            }
        }
        let (tx, rx) = channel();
        let handler = Arc::clone(&self.handler);
        let idle = Arc::clone(&self.idle);
        thread::Builder::new()
            .name("test-plugin-conn".into())
            .spawn(move || work(item, &rx, &tx, &idle, &*handler))?;
        Ok(())
    }
}

impl<T> Drop for Workers<T> {
    fn drop(&mut self) {
        let mut idle = lock(&self.idle);
        idle.stopped = true;
        for thread in idle.threads.drain(..) {
            let _ = thread.send(Job::Stop);
        }
    }
}

fn work<T>(
    first: T,
    rx: &Receiver<Job<T>>,
    tx: &Sender<Job<T>>,
    idle: &Mutex<Idle<T>>,
    handler: &(dyn Fn(T) + Send + Sync),
) {
    let mut item = first;
    loop {
        handler(item);
        {
            let mut idle = lock(idle);
            if idle.stopped || idle.threads.len() >= MAX_IDLE {
                return;
            }
            idle.threads.push(tx.clone());
        }
        match rx.recv() {
            Ok(Job::Run(next)) => item = next,
            Ok(Job::Stop) | Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Barrier;

    #[test]
    fn each_item_runs_once_and_idle_threads_are_reused() {
        let done = Arc::new(AtomicUsize::new(0));
        let threads = Arc::new(Mutex::new(std::collections::HashSet::new()));
        let workers = {
            let (done, threads) = (Arc::clone(&done), Arc::clone(&threads));
            Workers::new(move |n: usize| {
                lock(&threads).insert(thread::current().id());
                done.fetch_add(n, Ordering::SeqCst);
            })
        };
        for _ in 0..100 {
            workers.run(1).expect("run");
            while lock(&workers.idle).threads.is_empty() {
                thread::yield_now();
            }
        }
        assert_eq!(done.load(Ordering::SeqCst), 100);
        assert_eq!(
            lock(&threads).len(),
            1,
            "one thread served them all in turn"
        );
    }

    #[test]
    fn busy_threads_do_not_block_new_items() {
        let barrier = Arc::new(Barrier::new(4));
        let workers = {
            let barrier = Arc::clone(&barrier);
            Workers::new(move |()| {
                barrier.wait();
            })
        };
        for _ in 0..3 {
            workers.run(()).expect("run");
        }
        // All three items block until the test thread arrives: they run concurrently.
        barrier.wait();
        drop(workers);
    }
}
