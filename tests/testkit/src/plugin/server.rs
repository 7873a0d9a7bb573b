//! The plugin's threads: an accept loop, one thread per connection, and the shared state
//! they work on (volumes, faults, call record, shutdown signal, open connections).

use std::collections::HashMap;
use std::io;
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::fault::{normalize_endpoint, Fault, FaultTable};
use super::record::Recorder;
use super::volumes::{Answer, Behaviour, Volumes};
use super::wire::{write_reply, Framing, ReadError, Request, RequestReader, PLUGIN_MEDIA_TYPE};
use super::workers::Workers;

/// What the connection threads change under one lock.
#[derive(Debug)]
pub(crate) struct State {
    pub volumes: Volumes,
    pub faults: FaultTable,
    pub recorder: Recorder,
}

#[derive(Debug, Default)]
struct Connections {
    next_id: u64,
    open: HashMap<u64, UnixStream>,
}

/// Everything the test thread and the server threads share.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    behaviour: Behaviour,
    /// Added to every call before it is answered.
    delay: Duration,
    chunked: AtomicBool,
    stopping: Mutex<bool>,
    stopped: Condvar,
    connections: Mutex<Connections>,
    connection_closed: Condvar,
}

/// Locks a mutex even if a thread panicked while holding it: the data stays usable for a
/// test's assertions and for shutdown.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(state: State, behaviour: Behaviour, delay: Duration, chunked: bool) -> Self {
        Shared {
            state: Mutex::new(state),
            behaviour,
            delay,
            chunked: AtomicBool::new(chunked),
            stopping: Mutex::new(false),
            stopped: Condvar::new(),
            connections: Mutex::default(),
            connection_closed: Condvar::new(),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub(crate) fn set_chunked(&self, on: bool) {
        self.chunked.store(on, Ordering::Relaxed);
    }

    fn is_stopping(&self) -> bool {
        *lock(&self.stopping)
    }

    /// Tells every waiting handler and the accept loop to finish.
    pub(crate) fn stop(&self) {
        *lock(&self.stopping) = true;
        self.stopped.notify_all();
    }

    /// Waits `timeout` (`None`: until shutdown); returns true when the plugin is stopping.
    fn wait_for_stop(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut stopping = lock(&self.stopping);
        while !*stopping {
            match deadline {
                None => {
                    stopping = self
                        .stopped
                        .wait(stopping)
                        .unwrap_or_else(PoisonError::into_inner)
                }
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    stopping = self
                        .stopped
                        .wait_timeout(stopping, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
        true
    }

    fn register(&self, stream: &UnixStream) -> Option<u64> {
        let clone = stream.try_clone().ok()?;
        let mut conns = lock(&self.connections);
        conns.next_id += 1;
        let id = conns.next_id;
        conns.open.insert(id, clone);
        Some(id)
    }

    fn deregister(&self, id: u64) {
        lock(&self.connections).open.remove(&id);
        self.connection_closed.notify_all();
    }

    /// Connections accepted so far.
    pub(crate) fn accepted(&self) -> u64 {
        lock(&self.connections).next_id
    }

    /// Shuts every open connection down (unblocking its reads and writes) and waits up to
    /// `limit` for their threads to finish.
    pub(crate) fn close_connections(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut conns = lock(&self.connections);
        for stream in conns.open.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        while !conns.open.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            conns = self
                .connection_closed
                .wait_timeout(conns, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Accepts connections until the plugin stops, each served on a thread of its own.
pub(crate) fn accept_loop(listener: UnixListener, shared: Arc<Shared>) {
    let workers = {
        let shared = Arc::clone(&shared);
        Workers::new(move |(stream, id): (UnixStream, u64)| {
            serve(stream, &shared);
            shared.deregister(id);
        })
    };
    loop {
        let accepted = listener.accept();
        if shared.is_stopping() {
            return;
        }
        match accepted {
            Ok((stream, _)) => {
                if let Some(id) = shared.register(&stream) {
                    if workers.run((stream, id)).is_err() {
                        shared.deregister(id);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Out of descriptors or similar: back off instead of spinning.
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Serves requests on one connection until either side closes it.
fn serve(mut stream: UnixStream, shared: &Shared) {
    let mut reader = RequestReader::default();
    loop {
        let request = match reader.read(&mut stream) {
            Ok(request) => request,
            Err(ReadError::Closed | ReadError::Io) => return,
            Err(ReadError::Bad(text)) => {
                let body = json!({ "Err": text }).to_string();
                let _ = write_reply(
                    &mut stream,
                    400,
                    PLUGIN_MEDIA_TYPE,
                    body.as_bytes(),
                    Framing::Length,
                    false,
                );
                return;
            }
        };
        let keep_alive = request.keep_alive;
        match respond(&mut stream, shared, request) {
            Ok(true) if keep_alive => {}
            _ => return,
        }
    }
}

/// A reply ready to be framed.
struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, body: &Value) -> Self {
        Reply {
            status,
            content_type: PLUGIN_MEDIA_TYPE.into(),
            body: body.to_string().into_bytes(),
        }
    }

    fn raw(status: u16, content_type: &str, body: &str) -> Self {
        Reply {
            status,
            content_type: content_type.into(),
            body: body.as_bytes().to_vec(),
        }
    }
}

/// Answers one request; `Ok(true)` when the connection may carry another one.
fn respond(stream: &mut UnixStream, shared: &Shared, request: Request) -> io::Result<bool> {
    let framing = if shared.chunked.load(Ordering::Relaxed) {
        Framing::Chunked
    } else {
        Framing::Length
    };
    let outcome = match parse_call(&request) {
        Ok((endpoint, body)) => perform(shared, endpoint, &body, framing),
        Err(refusal) => Outcome::Send(refusal, framing),
    };
    match outcome {
        Outcome::Send(reply, framing) => {
            let keep_alive = request.keep_alive;
            write_reply(
                stream,
                reply.status,
                &reply.content_type,
                &reply.body,
                framing,
                keep_alive,
            )?;
            Ok(!framing.closes())
        }
        Outcome::Close => Ok(false),
    }
}

/// The endpoint and JSON body of a plugin call, or the reply refusing the request.
fn parse_call(request: &Request) -> Result<(&str, Value), Reply> {
    if request.method != "POST" {
        let body = json!({ "Err": format!("method {} not allowed", request.method) });
        return Err(Reply::json(405, &body));
    }
    let endpoint = normalize_endpoint(&request.path);
    if request.body.is_empty() {
        return Ok((endpoint, Value::Null));
    }
    match serde_json::from_slice(&request.body) {
        Ok(body) => Ok((endpoint, body)),
        Err(e) => {
            let body = json!({ "Err": format!("{endpoint}: invalid JSON body: {e}") });
            Err(Reply::json(400, &body))
        }
    }
}

/// What becomes of a call.
enum Outcome {
    Send(Reply, Framing),
    /// Close the connection without a reply.
    Close,
}

/// Records the call, applies its fault and the plugin's delay, and performs it unless the
/// fault fails it. `framing` is the one to use when the fault does not choose another.
fn perform(shared: &Shared, endpoint: &str, body: &Value, framing: Framing) -> Outcome {
    let fault = {
        let mut state = shared.state();
        if let Err(e) = state.recorder.record(endpoint, body) {
            eprintln!("dvdi-testkit: cannot record {endpoint}: {e}");
        }
        state.faults.take(endpoint)
    };
    let delay = match &fault {
        Some(Fault::Delay(d)) => shared.delay + *d,
        _ => shared.delay,
    };
    if !delay.is_zero() && shared.wait_for_stop(Some(delay)) {
        return Outcome::Close;
    }
    let normal = || match shared
        .state()
        .volumes
        .handle(endpoint, body, shared.behaviour)
    {
        Some(Answer { status, body }) => Reply::json(status, &body),
        None => Reply::raw(404, "text/plain; charset=utf-8", "404 page not found\n"),
    };
    let reply = match fault {
        None | Some(Fault::Delay(_)) => normal(),
        Some(Fault::Chunked) => return Outcome::Send(normal(), Framing::Chunked),
        Some(Fault::CloseDelimited) => return Outcome::Send(normal(), Framing::CloseDelimited),
        Some(Fault::CutMidBody) => return Outcome::Send(normal(), Framing::CutMidBody),
        Some(Fault::ConflictingLengths) => {
            return Outcome::Send(normal(), Framing::ConflictingLengths)
        }
        Some(Fault::Mountpoint(text)) => with_mountpoint(normal(), &text),
        Some(Fault::ListNames(names)) => {
            let volumes: Vec<Value> = names.iter().map(|n| json!({ "Name": n })).collect();
            Reply::json(200, &json!({ "Volumes": volumes, "Err": "" }))
        }
        Some(Fault::Huge(size)) => padded(normal(), size),
        Some(Fault::ErrorIn200(text)) => Reply::json(200, &json!({ "Err": text })),
        Some(Fault::Status {
            code,
            body,
            content_type,
        }) => Reply::raw(code, &content_type, &body),
        Some(Fault::Malformed) => Reply::raw(200, PLUGIN_MEDIA_TYPE, "{\"Err\": this is not JSON"),
        Some(Fault::NotVolumeDriver) => {
            Reply::json(200, &json!({ "Implements": ["NetworkDriver"] }))
        }
        Some(Fault::Hang) => {
            shared.wait_for_stop(None);
            return Outcome::Close;
        }
        Some(Fault::DropConnection) => return Outcome::Close,
    };
    Outcome::Send(reply, framing)
}

/// `reply` with its `Mountpoint` (or its `Volume`'s) set to `text`.
fn with_mountpoint(reply: Reply, text: &str) -> Reply {
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(&reply.body) else {
        return reply;
    };
    match fields.get_mut("Volume") {
        Some(Value::Object(volume)) => {
            volume.insert("Mountpoint".into(), Value::String(text.into()));
        }
        _ => {
            fields.insert("Mountpoint".into(), Value::String(text.into()));
        }
    }
    Reply::json(reply.status, &Value::Object(fields))
}

/// `reply` with a `"Padding"` field that brings its JSON body to about `size` bytes.
fn padded(reply: Reply, size: usize) -> Reply {
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(&reply.body) else {
        return reply;
    };
    // `,"Padding":""` adds 14 bytes besides the padding itself.
    let pad = size.saturating_sub(reply.body.len() + 14);
    fields.insert("Padding".into(), Value::String("x".repeat(pad)));
    Reply::json(reply.status, &Value::Object(fields))
}
