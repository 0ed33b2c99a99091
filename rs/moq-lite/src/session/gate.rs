//! A stream polled only after its own waker fired.
//!
//! `tokio::select!` polls every branch each time its task wakes. A subscription's task wakes for
//! every frame it forwards, so a branch that waits on something rare (a SUBSCRIBE_UPDATE, the next
//! group) would be polled, and its wait set up again, once per frame. [`Gate`] keeps the inner
//! stream's wait in place and answers `Pending` at once until that wait is woken.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::task::{waker_ref, ArcWake, AtomicWaker};
use futures::Stream;

struct Signal {
    woken: AtomicBool,
    parent: AtomicWaker,
}

impl ArcWake for Signal {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.woken.store(true, Ordering::Release);
        arc_self.parent.wake();
    }
}

/// Wraps a stream so it is polled only on the first poll, after it yielded an item, or after its
/// own waker fired.
pub(crate) struct Gate<S> {
    inner: Pin<Box<S>>,
    signal: Arc<Signal>,
}

impl<S: Stream> Gate<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner: Box::pin(inner),
            signal: Arc::new(Signal {
                woken: AtomicBool::new(true),
                parent: AtomicWaker::new(),
            }),
        }
    }
}

impl<S: Stream> Stream for Gate<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.get_mut();
        this.signal.parent.register(cx.waker());
        if !this.signal.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let waker = waker_ref(&this.signal);
        let mut inner_cx = Context::from_waker(&waker);
        let poll = this.inner.as_mut().poll_next(&mut inner_cx);
        if poll.is_ready() {
            // There may be more: look again on the next poll.
            this.signal.woken.store(true, Ordering::Release);
        }
        poll
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn polls_the_inner_stream_only_when_woken() {
        let polls = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let counted = {
            let polls = polls.clone();
            futures::stream::unfold(rx, move |mut rx| {
                let polls = polls.clone();
                async move {
                    let item = std::future::poll_fn(|cx| {
                        polls.fetch_add(1, Ordering::Relaxed);
                        rx.poll_recv(cx)
                    })
                    .await;
                    item.map(|item| (item, rx))
                }
            })
        };
        let mut gate = Gate::new(counted);
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);

        // First poll reaches the inner stream; the next ones do not until it is woken.
        assert!(gate.poll_next_unpin(&mut cx).is_pending());
        assert_eq!(polls.load(Ordering::Relaxed), 1);
        for _ in 0..10 {
            assert!(gate.poll_next_unpin(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::Relaxed), 1);

        // A send wakes it: the item comes through, and every queued item after it.
        tx.send(7).unwrap();
        tx.send(8).unwrap();
        assert_eq!(gate.poll_next_unpin(&mut cx), Poll::Ready(Some(7)));
        assert_eq!(gate.poll_next_unpin(&mut cx), Poll::Ready(Some(8)));
        assert!(gate.poll_next_unpin(&mut cx).is_pending());
        let before = polls.load(Ordering::Relaxed);
        assert!(gate.poll_next_unpin(&mut cx).is_pending());
        assert_eq!(polls.load(Ordering::Relaxed), before);

        // The end of the inner stream comes through too.
        drop(tx);
        assert_eq!(gate.next().await, None);
    }

    #[tokio::test]
    async fn wakes_the_task_that_polled_it() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let mut gate = Gate::new(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }));
        let task = tokio::spawn(async move { gate.next().await });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        tx.send(5).unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .expect("the gate did not wake its task")
            .unwrap();
        assert_eq!(got, Some(5));
    }
}
