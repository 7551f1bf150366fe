//! A connection's queue of unwritten ticks, bounded twice: by ticks
//! (`--stream-queue`) and by their bytes (`--stream-queue-bytes`). The
//! tick bound alone let a stalled reader of large ticks (every context of
//! a big fleet: megabytes a tick) hold that many megabytes each.
//!
//! Invariant: the bytes queued are at most the byte bound, or one tick
//! where a single tick is larger (a queue that is empty always takes
//! one, or such a stream could never tick). A push past either bound is
//! a slow consumer ([`End::SlowConsumer`]). The count is taken before a
//! message goes on the channel and given back when it comes off, so it
//! never undercounts what waits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc::{self, error::TrySendError};

use super::End;

/// The sending side: the stream's session.
pub struct TickTx<T> {
    tx: mpsc::Sender<(T, usize)>,
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// The receiving side: the connection's writer.
pub struct TickRx<T> {
    rx: mpsc::Receiver<(T, usize)>,
    queued: Arc<AtomicUsize>,
}

/// A queue of at most `ticks` messages and `max_bytes` bytes (see the
/// module's invariant).
pub fn channel<T>(ticks: usize, max_bytes: usize) -> (TickTx<T>, TickRx<T>) {
    let (tx, rx) = mpsc::channel(ticks.max(1));
    let queued = Arc::new(AtomicUsize::new(0));
    (TickTx { tx, queued: queued.clone(), max_bytes }, TickRx { rx, queued })
}

impl<T> TickTx<T> {
    /// Queues `msg` of `bytes`: `Err` says why the stream must end.
    pub fn push(&self, msg: T, bytes: usize) -> Result<(), End> {
        let before = self.queued.fetch_add(bytes, Ordering::AcqRel);
        if before > 0 && before + bytes > self.max_bytes {
            self.queued.fetch_sub(bytes, Ordering::AcqRel);
            return Err(End::SlowConsumer);
        }
        self.tx.try_send((msg, bytes)).map_err(|e| {
            self.queued.fetch_sub(bytes, Ordering::AcqRel);
            match e {
                TrySendError::Full(_) => End::SlowConsumer,
                TrySendError::Closed(_) => End::ClientGone,
            }
        })
    }
}

impl<T> TickRx<T> {
    /// The next message; `None` once the session is gone and the queue empty.
    pub async fn recv(&mut self) -> Option<T> {
        let (msg, bytes) = self.rx.recv().await?;
        self.queued.fetch_sub(bytes, Ordering::AcqRel);
        Some(msg)
    }

    /// The next message if one waits.
    pub fn try_recv(&mut self) -> Option<T> {
        let (msg, bytes) = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(bytes, Ordering::AcqRel);
        Some(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_by_ticks_and_by_bytes() {
        // Bytes: 600 + 300 fit 1,000; another 200 does not.
        let (tx, mut rx) = channel::<u32>(4, 1_000);
        assert_eq!(tx.push(1, 600), Ok(()));
        assert_eq!(tx.push(2, 300), Ok(()));
        assert_eq!(tx.push(3, 200), Err(End::SlowConsumer));
        // Taking one gives its bytes back.
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(tx.push(3, 200), Ok(()));
        assert_eq!(rx.try_recv(), Some(2));
        assert_eq!(rx.try_recv(), Some(3));
        assert_eq!(rx.try_recv(), None);
        // One tick larger than the bound goes into an empty queue, alone.
        assert_eq!(tx.push(4, 5_000), Ok(()));
        assert_eq!(tx.push(5, 1), Err(End::SlowConsumer));
        assert_eq!(rx.recv().await, Some(4));
        // Ticks: four small ones fill it.
        for i in 0..4 {
            assert_eq!(tx.push(i, 1), Ok(()));
        }
        assert_eq!(tx.push(9, 1), Err(End::SlowConsumer));
        // A refused push left the byte count as it was: four bytes wait.
        for _ in 0..4 {
            rx.recv().await.expect("queued");
        }
        assert_eq!(tx.push(6, 1_000), Ok(()), "the count is back to zero");
        assert_eq!(tx.push(7, 1), Err(End::SlowConsumer), "and the 1,000 bytes count");
    }

    #[tokio::test]
    async fn a_gone_writer_is_a_gone_client() {
        let (tx, rx) = channel::<u32>(4, 1_000);
        drop(rx);
        assert_eq!(tx.push(1, 10), Err(End::ClientGone));
    }
}
