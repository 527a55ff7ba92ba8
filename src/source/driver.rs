//! The thread that reads followed files: one for a `follow:` path, one for
//! all the files of a `follow:` pattern.
//!
//! A thread per followed file would make a thousand files a thousand threads,
//! each waking to look at its file: most of the memory and the idle CPU of
//! following many files. Instead a driver takes turns with its files: each
//! turn of a file does at most one chunk's read (plus the looks at the file
//! that follow its end), so every file goes on at the pace of the others.
//!
//! The driver never waits for one stream: a stream whose channel is full is
//! passed over until its source takes an event and wakes the driver (see
//! [`Control`]). Were it to wait, a stream holding the merged output in the
//! middle of a line could wait on the driver in turn, and nothing would move
//! until the line was cut.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::source::follow::{FollowEvent, Follower, Step};

/// Stack of a driver thread: it only reads and hashes.
const DRIVER_STACK: usize = 256 * 1024;

/// How long a file whose stream's channel is full waits for its wake-up
/// before the driver tries again anyway.
const BLOCKED_RETRY: Duration = Duration::from_secs(1);

/// What the driver is told.
enum Message {
    /// Follow this file too.
    Add(Box<Entry>),
    /// The file with this number has something to do: its stream took an
    /// event (room in its channel), its stop was requested, or its directory
    /// changed.
    Wake(u64),
}

/// A handle on a driver thread, for adding files to it. The thread ends
/// when no handle is left and its last file has ended.
#[derive(Clone)]
pub struct FollowDriver {
    messages: std_mpsc::Sender<Message>,
}

impl fmt::Debug for FollowDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FollowDriver")
    }
}

/// Numbers the files of all drivers, so that a wake-up names one file.
static NEXT_FILE: AtomicU64 = AtomicU64::new(0);

/// Shared between a followed file's source (in its stream) and its driver.
pub(crate) struct Control {
    /// The file's number in its driver.
    number: u64,
    stop: AtomicBool,
    /// Set by the driver before it hands an event to a channel that may be
    /// full; the source, taking an event, wakes the driver if it is set.
    wants_room: AtomicBool,
    messages: std_mpsc::Sender<Message>,
}

impl Control {
    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The stream wants to stop: the file is read to its end, then stops.
    pub(crate) fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// The stream took an event: if the driver waits for room, it goes on.
    pub(crate) fn took_event(&self) {
        if self.wants_room.swap(false, Ordering::SeqCst) {
            self.wake();
        }
    }

    /// Wakes the driver for this file.
    pub(crate) fn wake(&self) {
        let _ = self.messages.send(Message::Wake(self.number));
    }

    /// A function that wakes the driver for this file (a change notifier's).
    pub(crate) fn waker(&self) -> impl Fn() + Send + 'static {
        let messages = self.messages.clone();
        let number = self.number;
        move || {
            let _ = messages.send(Message::Wake(number));
        }
    }
}

impl FollowDriver {
    /// Starts a driver thread.
    pub fn spawn() -> io::Result<FollowDriver> {
        let (messages, inbox) = std_mpsc::channel();
        std::thread::Builder::new()
            .name("follow".into())
            .stack_size(DRIVER_STACK)
            .spawn(move || drive(&inbox))?;
        Ok(FollowDriver { messages })
    }

    /// The control of a file about to be followed by this driver.
    pub(crate) fn control(&self) -> Control {
        Control {
            number: NEXT_FILE.fetch_add(1, Ordering::Relaxed),
            stop: AtomicBool::new(false),
            wants_room: AtomicBool::new(false),
            messages: self.messages.clone(),
        }
    }

    /// Follows `follower`, whose events go to `events`; `watcher`, if any,
    /// is its change notifier, kept for as long as it is followed.
    pub(crate) fn add(
        &self,
        follower: Follower,
        events: mpsc::Sender<FollowEvent>,
        watcher: Option<notify::RecommendedWatcher>,
    ) -> io::Result<()> {
        let entry = Entry {
            follower,
            events,
            due: Instant::now(),
            queued: false,
            ended: false,
            _watcher: watcher,
        };
        self.messages
            .send(Message::Add(Box::new(entry)))
            .map_err(|_| io::Error::other("the follow thread stopped"))
    }
}

/// A file the driver follows.
struct Entry {
    follower: Follower,
    events: mpsc::Sender<FollowEvent>,
    /// When the file is to be looked at next (its timer; a wake-up may come
    /// sooner).
    due: Instant,
    /// Whether it is in the queue of files to turn now.
    queued: bool,
    /// The last event (stopped, released, failed) is in the outbox.
    ended: bool,
    _watcher: Option<notify::RecommendedWatcher>,
}

/// What a file wants after its turn.
enum After {
    /// Another turn, after the others ready now.
    Again,
    /// A turn at this time, or sooner if woken.
    At(Instant),
    /// A turn when woken: its stream's channel is full.
    Room,
    /// Nothing more: its stream has ended, or is gone.
    Gone,
}

impl Entry {
    /// One turn: hands on what is waiting, then reads at most one chunk.
    fn turn(&mut self, now: Instant) -> After {
        match self.flush() {
            Flushed::All if self.ended => return After::Gone,
            Flushed::All => {}
            Flushed::Full => return After::Room,
            Flushed::Closed => return After::Gone,
        }
        // Nothing is read ahead of a full channel: with many files, what
        // each holds in memory is what its stream has, and no more.
        if !self.has_room() {
            return After::Room;
        }
        let after = match self.follower.step() {
            Ok(Step::Again) => After::Again,
            Ok(Step::Wait(wait)) => After::At(now + wait),
            Ok(Step::Ended(last)) => {
                self.follower.outbox.push_back(last);
                self.ended = true;
                After::Gone
            }
            Err(e) => {
                self.follower.outbox.push_back(FollowEvent::Failed(e));
                self.ended = true;
                After::Gone
            }
        };
        match self.flush() {
            Flushed::All => after,
            Flushed::Full => After::Room,
            Flushed::Closed => After::Gone,
        }
    }

    /// Whether the stream's channel has room; if not, its source wakes the
    /// driver when it takes an event.
    fn has_room(&self) -> bool {
        if self.events.capacity() > 0 {
            return true;
        }
        let control = self.follower.control();
        control.wants_room.store(true, Ordering::SeqCst);
        // Taken meanwhile, before the flag was seen?
        if self.events.capacity() > 0 {
            control.wants_room.store(false, Ordering::SeqCst);
            return true;
        }
        false
    }

    /// Hands the waiting events to the stream's channel.
    fn flush(&mut self) -> Flushed {
        let Entry {
            follower, events, ..
        } = self;
        if follower.outbox.is_empty() {
            return Flushed::All;
        }
        let control = Arc::clone(follower.control_handle());
        while let Some(event) = follower.outbox.pop_front() {
            // Before trying: a source that takes an event after a failed
            // try sees the flag and wakes the driver.
            control.wants_room.store(true, Ordering::SeqCst);
            match events.try_send(event) {
                Ok(()) => control.wants_room.store(false, Ordering::SeqCst),
                Err(TrySendError::Full(event)) => {
                    follower.outbox.push_front(event);
                    return Flushed::Full;
                }
                Err(TrySendError::Closed(_)) => {
                    follower.outbox.clear();
                    return Flushed::Closed;
                }
            }
        }
        Flushed::All
    }
}

enum Flushed {
    All,
    Full,
    Closed,
}

/// The files of a driver and when each wants its turn.
#[derive(Default)]
struct Files {
    entries: HashMap<u64, Entry>,
    /// Files to turn now, in order.
    ready: VecDeque<u64>,
    /// Files waiting for a time (an entry whose `due` differs is stale).
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl Files {
    fn queue(&mut self, number: u64) {
        if let Some(entry) = self.entries.get_mut(&number)
            && !entry.queued
        {
            entry.queued = true;
            self.ready.push_back(number);
        }
    }

    fn wait(&mut self, number: u64, at: Instant) {
        if let Some(entry) = self.entries.get_mut(&number) {
            entry.due = at;
            self.timers.push(Reverse((at, number)));
        }
    }

    /// Queues the files whose time has come.
    fn expire(&mut self, now: Instant) {
        while let Some(&Reverse((at, number))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self.entries.get(&number).is_some_and(|e| e.due == at) {
                self.queue(number);
            }
        }
    }

    /// One turn for each file ready now.
    fn round(&mut self, now: Instant) {
        for _ in 0..self.ready.len() {
            let Some(number) = self.ready.pop_front() else {
                break;
            };
            let Some(entry) = self.entries.get_mut(&number) else {
                continue;
            };
            entry.queued = false;
            match entry.turn(now) {
                After::Again => self.queue(number),
                After::At(at) => self.wait(number, at),
                // Woken by its source; the timer only in case a wake-up
                // was missed.
                After::Room => self.wait(number, now + BLOCKED_RETRY),
                After::Gone => {
                    self.entries.remove(&number);
                }
            }
        }
    }

    /// How long to wait for a message: not at all with files ready, until
    /// the next timer, or (`None`) until a message comes.
    fn timeout(&self, now: Instant) -> Option<Duration> {
        if !self.ready.is_empty() {
            return Some(Duration::ZERO);
        }
        self.timers
            .peek()
            .map(|Reverse((at, _))| at.saturating_duration_since(now))
    }

    fn receive(&mut self, message: Message) {
        match message {
            Message::Add(entry) => {
                let number = entry.follower.control().number;
                self.entries.insert(number, *entry);
                self.queue(number);
            }
            Message::Wake(number) => self.queue(number),
        }
    }
}

/// The driver thread: turns over its files until no handle and no file is
/// left.
fn drive(inbox: &std_mpsc::Receiver<Message>) {
    let mut files = Files::default();
    loop {
        let now = Instant::now();
        files.expire(now);
        files.round(now);
        let message = match files.timeout(Instant::now()) {
            None => inbox
                .recv()
                .map_err(|_| std_mpsc::RecvTimeoutError::Disconnected),
            Some(Duration::ZERO) => inbox.try_recv().map_err(|e| match e {
                std_mpsc::TryRecvError::Empty => std_mpsc::RecvTimeoutError::Timeout,
                std_mpsc::TryRecvError::Disconnected => std_mpsc::RecvTimeoutError::Disconnected,
            }),
            Some(wait) => inbox.recv_timeout(wait),
        };
        match message {
            Ok(message) => files.receive(message),
            Err(std_mpsc::RecvTimeoutError::Timeout) => continue,
            // No handle and no file left (each file's control holds a
            // sender): done.
            Err(std_mpsc::RecvTimeoutError::Disconnected) if files.entries.is_empty() => return,
            Err(std_mpsc::RecvTimeoutError::Disconnected) => continue,
        }
        while let Ok(message) = inbox.try_recv() {
            files.receive(message);
        }
    }
}
