//! Writes the seed corpora of the fuzz targets: real replies of the testkit's plugin (every
//! endpoint, every reply framing and error style it can inject), spec files, environments as
//! Marathon apps and Elasticsearch nodes set them, names and option lists from the tests.
//!
//! Run from `fuzz/`: `cargo run --example capture_seeds` (rewrites `corpus/*/seed-*`).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use dvdi::config::DEFAULT_MAX_REPLY_BYTES;
use dvdi::http;
use dvdi::plugin::Endpoint;
use dvdi_fuzz::{endpoint_byte, ReplyControl};
use dvdi_testkit::plugin::{Fault, TestPlugin};

/// Sends one request as `dvdi::http::post` does without kept connections (`Connection:
/// close`) and returns every byte of the answer, up to the close.
fn raw_call(socket: &Path, endpoint: Endpoint, body: &str) -> Vec<u8> {
    let mut s = UnixStream::connect(socket).expect("connect to the test plugin");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set a read timeout");
    let head = format!(
        "POST /{endpoint} HTTP/1.1\r\nHost: plugin\r\nAccept: {0}\r\nContent-Type: {0}\r\n\
         Content-Length: {1}\r\nConnection: close\r\n\r\n",
        http::PLUGIN_MEDIA_TYPE,
        body.len()
    );
    s.write_all(head.as_bytes()).expect("send the head");
    s.write_all(body.as_bytes()).expect("send the body");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read the reply");
    out
}

struct Corpus<'a> {
    root: &'a Path,
}

impl Corpus<'_> {
    fn write(&self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).expect("create the corpus folder");
        std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write a seed");
    }

    /// One plugin reply: as raw bytes for `http_reply` (read whole, and trickled for a few),
    /// and de-framed for `plugin_reply`.
    fn reply(&self, name: &str, endpoint: Endpoint, raw: &[u8], trickle: bool) {
        let control = ReplyControl {
            endpoint,
            step: 0,
            interrupt: false,
            max_body: DEFAULT_MAX_REPLY_BYTES,
        };
        self.write("http_reply", name, &[&control.bytes()[..], raw].concat());
        if trickle {
            let slow = ReplyControl {
                step: 5,
                interrupt: true,
                max_body: 64,
                ..control
            };
            let name = format!("{name}-trickled");
            self.write("http_reply", &name, &[&slow.bytes()[..], raw].concat());
        }
        if let Ok(r) = http::parse_reply(raw, DEFAULT_MAX_REPLY_BYTES) {
            let head = [
                endpoint_byte(endpoint),
                (r.status >> 8) as u8,
                r.status as u8,
            ];
            self.write("plugin_reply", name, &[&head[..], &r.body].concat());
        }
    }
}

fn capture_replies(corpus: &Corpus) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let socket = dir.path().join("seed.sock");
    let plugin = TestPlugin::start(&socket, &dir.path().join("mnt")).expect("start the plugin");
    let call = |endpoint, body: &str| raw_call(&socket, endpoint, body);
    let vol = r#"{"Name":"data"}"#;
    let mount = r#"{"Name":"data","ID":"c0ffee"}"#;

    // Every endpoint answering normally.
    corpus.reply(
        "activate",
        Endpoint::Activate,
        &call(Endpoint::Activate, ""),
        true,
    );
    let create = r#"{"Name":"data","Opts":{"size":"5","o":"addr=10.0.0.1,rw"}}"#;
    corpus.reply(
        "create",
        Endpoint::Create,
        &call(Endpoint::Create, create),
        false,
    );
    corpus.reply("get", Endpoint::Get, &call(Endpoint::Get, vol), true);
    corpus.reply(
        "mount",
        Endpoint::Mount,
        &call(Endpoint::Mount, mount),
        false,
    );
    corpus.reply("path", Endpoint::Path, &call(Endpoint::Path, vol), false);
    corpus.reply("list", Endpoint::List, &call(Endpoint::List, "{}"), false);
    let caps = call(Endpoint::Capabilities, "{}");
    corpus.reply("capabilities", Endpoint::Capabilities, &caps, false);
    corpus.reply(
        "unmount",
        Endpoint::Unmount,
        &call(Endpoint::Unmount, mount),
        false,
    );
    corpus.reply(
        "remove",
        Endpoint::Remove,
        &call(Endpoint::Remove, vol),
        false,
    );
    corpus.reply(
        "get-missing",
        Endpoint::Get,
        &call(Endpoint::Get, vol),
        false,
    );
    // Mount without an ID: HTTP 400 with a JSON Err.
    let no_id = call(Endpoint::Mount, vol);
    corpus.reply("mount-without-id", Endpoint::Mount, &no_id, false);

    // The framings and error styles of real plugins.
    let faults = [
        (
            "err-in-200",
            Endpoint::Mount,
            Fault::ErrorIn200("volume busy".into()),
        ),
        (
            "status-500-json",
            Endpoint::Unmount,
            Fault::Status {
                code: 500,
                body: r#"{"Err":"backend down"}"#.into(),
                content_type: http::PLUGIN_MEDIA_TYPE.into(),
            },
        ),
        (
            "status-404-html",
            Endpoint::Capabilities,
            Fault::Status {
                code: 404,
                body: "<html><body>404 page not found</body></html>\n".into(),
                content_type: "text/html".into(),
            },
        ),
        ("chunked", Endpoint::List, Fault::Chunked),
        ("close-delimited", Endpoint::Get, Fault::CloseDelimited),
        ("malformed", Endpoint::Path, Fault::Malformed),
        ("huge", Endpoint::Get, Fault::Huge(600)),
        ("cut-mid-body", Endpoint::Mount, Fault::CutMidBody),
        (
            "not-volume-driver",
            Endpoint::Activate,
            Fault::NotVolumeDriver,
        ),
        ("dropped", Endpoint::Remove, Fault::DropConnection),
        (
            "conflicting-lengths",
            Endpoint::Get,
            Fault::ConflictingLengths,
        ),
        (
            "mountpoint-relative",
            Endpoint::Mount,
            Fault::Mountpoint("rel".into()),
        ),
        (
            "mountpoint-newline",
            Endpoint::Path,
            Fault::Mountpoint("/m\n/x".into()),
        ),
        (
            "list-names",
            Endpoint::List,
            Fault::ListNames(vec!["a\nb".into(), "c\u{1b}[0m".into()]),
        ),
    ];
    plugin.add_volume("data", &[("size", "5")]);
    for (name, endpoint, fault) in faults {
        plugin.set_fault(endpoint.as_str(), fault, Some(1));
        let body = match endpoint {
            Endpoint::Activate => "",
            Endpoint::List | Endpoint::Capabilities => "{}",
            Endpoint::Mount | Endpoint::Unmount => mount,
            _ => vol,
        };
        corpus.reply(name, endpoint, &call(endpoint, body), name == "chunked");
    }
    plugin.set_chunked(true);
    let chunked_mount = call(Endpoint::Mount, mount);
    corpus.reply("mount-chunked", Endpoint::Mount, &chunked_mount, true);

    // What no test plugin sends but HTTP allows: an interim 100 reply, chunk extensions and
    // trailers, a body bigger than a small cap, a huge chunk size; and framings RFC 9112 §6.3
    // makes an error (conflicting or invalid lengths, a length beside chunked, other codings).
    let synthetic: [(&str, Endpoint, &[u8]); 12] = [
        (
            "continue-then-reply",
            Endpoint::Path,
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n{\"Mountpoint\":\"/m\"}\n",
        ),
        (
            "chunk-ext-trailer",
            Endpoint::Get,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\n{\"Vol\r\nf\r\nume\":null}     \r\n0\r\nX-Trailer: 1\r\n\r\n",
        ),
        (
            "http10-close",
            Endpoint::Create,
            b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\nplugin is starting",
        ),
        (
            "huge-chunk-size",
            Endpoint::List,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff0\r\nab\r\n0\r\n\r\n",
        ),
        (
            "framing-conflicting-lengths",
            Endpoint::Get,
            b"HTTP/1.1 200 OK\r\nContent-Length: 120\r\nContent-Length: 50\r\n\r\n{\"Volume\":{\"Name\":\"v\",\"Mountpoint\":\"/m\"},\"Err\":\"\"}HTTP/1.1 200 OK\r\nContent-Length: 31\r\n\r\n{\"Mountpoint\":\"/evil\",\"Err\":\"\"}",
        ),
        (
            "framing-length-list",
            Endpoint::Get,
            b"HTTP/1.1 200 OK\r\nContent-Length: 50, 53\r\n\r\n{\"Volume\":{\"Name\":\"v\",\"Mountpoint\":\"/m\"},\"Err\":\"\"}xyz",
        ),
        (
            "framing-repeated-same-length",
            Endpoint::Get,
            b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\nContent-Length: 50, 50\r\n\r\n{\"Volume\":{\"Name\":\"v\",\"Mountpoint\":\"/m\"},\"Err\":\"\"}",
        ),
        (
            "framing-signed-length",
            Endpoint::Get,
            b"HTTP/1.1 200 OK\r\nContent-Length: +50\r\n\r\n{\"Volume\":{\"Name\":\"v\",\"Mountpoint\":\"/m\"},\"Err\":\"\"}",
        ),
        (
            "framing-overflowing-length",
            Endpoint::Get,
            b"HTTP/1.1 200 OK\r\nContent-Length: 184467440737095516160\r\n\r\n{\"Volume\":{\"Name\":\"v\",\"Mountpoint\":\"/m\"},\"Err\":\"\"}",
        ),
        (
            "framing-length-and-chunked",
            Endpoint::Get,
            b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n32\r\n{\"Volume\":{\"Name\":\"v\",\"Mountpoint\":\"/m\"},\"Err\":\"\"}\r\n0\r\n\r\n",
        ),
        (
            "framing-gzip-coding",
            Endpoint::Get,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n{\"Volume\":{\"Name\":\"v\",\"Mountpoint\":\"/m\"},\"Err\":\"\"}",
        ),
        (
            "framing-chunked-then-gzip",
            Endpoint::Get,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n32\r\n{\"Volume\":{\"Name\":\"v\",\"Mountpoint\":\"/m\"},\"Err\":\"\"}\r\n0\r\n\r\n",
        ),
    ];
    for (name, endpoint, raw) in synthetic {
        corpus.reply(name, endpoint, raw, true);
    }
}

fn capture_specs(corpus: &Corpus) {
    let specs: [(&str, u8, &str); 10] = [
        ("unix", 0, "unix:///run/docker/plugins/rexray.sock\n"),
        ("tcp", 0, "tcp://127.0.0.1:8080"),
        ("http-slash", 0, "  http://localhost:3/\n"),
        ("https", 0, "https://plugins.example:443"),
        ("no-scheme", 0, "/run/no-scheme.sock"),
        (
            "json",
            1,
            r#"{"Name":"rexray","Addr":"unix:///run/rexray.sock"}"#,
        ),
        (
            "json-insecure",
            1,
            r#"{"Name":"p","Addr":"tcp://127.0.0.1:2","TLSConfig":{"InsecureSkipVerify":true}}"#,
        ),
        (
            "json-tls",
            1,
            r#"{"Addr":"https://h:1","TLSConfig":{"CAFile":"/ca.pem","CertFile":"/c.pem","KeyFile":"/k.pem"}}"#,
        ),
        ("json-no-addr", 1, r#"{"Name":"e"}"#),
        ("json-bad", 1, "{not json"),
    ];
    for (name, kind, text) in specs {
        corpus.write(
            "plugin_spec",
            name,
            &[&[kind][..], text.as_bytes()].concat(),
        );
    }
}

fn capture_envs(corpus: &Corpus) {
    let envs: [(&str, &str); 6] = [
        (
            "marathon-rexray",
            "MARATHON_APP_ID=/db\nDVDI_VOLUME_NAME=pgdata\nDVDI_VOLUME_DRIVER=rexray\n\
             DVDI_VOLUME_OPTS=size=5,iops=150,volumetype=io1\nDVDI_VOLUME_CONTAINERPATH=/var/lib/postgresql/data\n",
        ),
        (
            "elasticsearch-two",
            "ES_JAVA_OPTS=-Xms1g\nDVDI_VOLUME_NAME=es-1-data\nDVDI_VOLUME_DRIVER=local\n\
             DVDI_VOLUME_OPTS=size=1G,fstype=ext4\nDVDI_VOLUME_CONTAINERPATH=data\n\
             DVDI_VOLUME_NAME1=es-1-logs\nDVDI_VOLUME_DRIVER1=local\nDVDI_VOLUME_CONTAINERPATH1=logs\n\
             DVDI_VOLUME_READONLY1=false\nDVDI_VOLUME_EXPLICITCREATE1=TRUE\n",
        ),
        (
            "nfs-opts",
            "DVDI_VOLUME_NAME0=share\nDVDI_VOLUME_DRIVER0=local\n\
             DVDI_VOLUME_OPTS0=type=nfs,o=addr=10.0.0.1,rw,nfsvers=4,device=:/export\n\
             DVDI_VOLUME_CONTAINERPATH0=/tmp/share\n",
        ),
        (
            "same-volume-twice",
            "DVDI_VOLUME_NAME=v\nDVDI_VOLUME_NAME2=v\nDVDI_VOLUME_OPTS2=size=1\n\
             DVDI_VOLUME_EXPLICITCREATE2=true\nDVDI_VOLUME_NAME=v2\nDVDI_VOLUME_DVDCLI=/bin/evil\n",
        ),
        (
            "slots-and-mistakes",
            "DVDI_VOLUME_NAME99=last\nDVDI_VOLUME_NAME01=zero\nDVDI_VOLUME_NAMEX=bad\n\
             DVDI_VOLUME_OPTS5=size=1\nDVDI_VOLUME_READONLY=yes\n",
        ),
        (
            "readonly-conflict",
            "DVDI_VOLUME_NAME=v\nDVDI_VOLUME_CONTAINERPATH=/tmp/a/\nDVDI_VOLUME_NAME1=v\n\
             DVDI_VOLUME_CONTAINERPATH1=//tmp/./a\nDVDI_VOLUME_READONLY1=true\n",
        ),
    ];
    for (name, env) in envs {
        corpus.write("grammar_env", name, env.as_bytes());
    }
}

fn capture_names(corpus: &Corpus) {
    let names: [(&str, &str); 9] = [
        ("driver", "scaleio.v2"),
        ("volume", "es-1-data"),
        ("traversal", "../etc"),
        ("unicode", "ünïcode volume"),
        ("container-path", "//tmp///config/./"),
        (
            "opts-nfs",
            "type=nfs,o=addr=10.0.0.1,rw,nfsvers=4,device=:/export",
        ),
        ("opts-lists", " size = 5 , iops=150 \nvolumetype=io1\n"),
        ("opts-no-key", "rw,a=b"),
        ("opts-empty-key", "a=1,,=x"),
    ];
    for (name, text) in names {
        corpus.write("names_opts", name, text.as_bytes());
    }
}

fn capture_local_opts(corpus: &Corpus) {
    let lists: [(&str, &str); 9] = [
        ("block", "size=64M"),
        ("block-xfs", "size=1G,fstype=xfs"),
        ("block-too-small", "size=1K\nfstype=btrfs"),
        ("block-huge", "size=18446744073709551615G"),
        ("tmpfs", "type=tmpfs,device=tmpfs,o=size=64m,uid=1000"),
        (
            "nfs",
            "type=nfs,o=addr=10.0.0.1,rw,nfsvers=4,device=:/export",
        ),
        ("bind", "type=none,device=/srv/data,o=bind,ro"),
        ("conflict", "size=1G,type=tmpfs"),
        ("unknown", "iops=150"),
    ];
    for (name, text) in lists {
        corpus.write("local_opts", name, text.as_bytes());
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let corpus = Corpus { root: &root };
    capture_replies(&corpus);
    capture_specs(&corpus);
    capture_envs(&corpus);
    capture_names(&corpus);
    capture_local_opts(&corpus);
    println!("seeds written under {}", root.display());
}
