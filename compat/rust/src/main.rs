//! The rskafka driver of Ottla's compat matrix (contract in compat/drivers/__init__.py).
//!
//! rskafka is a minimal client: topics are created and deleted through its controller client,
//! and each partition is produced to, fetched from and listed through its own partition client.
//! It has no partitioner, no consumer groups, no idempotent or transactional producer and no
//! config APIs, so this driver offers create, produce, consume and codecs only. Keys are placed
//! by the Java client's partitioner (murmur2 of the key, sign bit cleared, modulo the count).
//! `--security` (the contract's JSON) reaches TLS listeners through rustls and SASL ones with
//! PLAIN or SCRAM-SHA-256/512, the mechanisms rskafka 0.6 offers with a password.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rskafka::client::partition::{Compression, OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder, Credentials, SaslConfig};
use rskafka::record::Record;
use rskafka::BackoffConfig;
use serde_json::{json, Value};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    bootstrap: String,
    topic: String,
    action: String,
    partitions: i32,
    count: usize,
    timeout: Duration,
    security: Option<Value>,
}

fn parse_args() -> Result<Args, Error> {
    let mut flags: HashMap<String, String> = HashMap::new();
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let name = flag.strip_prefix("--").ok_or_else(|| format!("unexpected argument {flag}"))?;
        let value = argv.next().ok_or_else(|| format!("--{name} needs a value"))?;
        flags.insert(name.to_string(), value);
    }
    let get = |name: &str, default: &str| flags.get(name).cloned().unwrap_or_else(|| default.to_string());
    Ok(Args {
        bootstrap: flags.get("bootstrap").cloned().ok_or("--bootstrap is required")?,
        topic: flags.get("topic").cloned().ok_or("--topic is required")?,
        action: flags.get("action").cloned().ok_or("--action is required")?,
        partitions: get("partitions", "3").parse()?,
        count: get("count", "1000").parse()?,
        timeout: Duration::from_secs_f64(get("timeout", "30").parse()?),
        security: flags.get("security").map(|json| serde_json::from_str(json)).transpose()?,
    })
}

fn key(i: usize) -> String {
    format!("k{i}")
}

fn value(i: usize) -> String {
    format!("v{i}")
}

/// Kafka's Utils.murmur2, as the Java client's default partitioner hashes a key.
fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

fn partition_for(key: &str, partitions: i32) -> i32 {
    (murmur2(key.as_bytes()) & 0x7fff_ffff) % partitions
}

fn record(k: String, v: String) -> Record {
    Record { key: Some(k.into_bytes()), value: Some(v.into_bytes()), headers: BTreeMap::new(), timestamp: Utc::now() }
}

async fn connect(args: &Args) -> Result<Client, Error> {
    let brokers = args.bootstrap.split(',').map(str::to_string).collect();
    let mut builder = ClientBuilder::new(brokers).client_id("compat-rskafka");
    if let Some(security) = &args.security {
        // rskafka retries every failed connection, a refused login too, until its backoff
        // deadline (none by default): give up in half the driver's time, so the error that kept
        // it retrying is reported rather than a bare timeout.
        let backoff = BackoffConfig { deadline: Some(args.timeout / 2), ..BackoffConfig::default() };
        builder = secure(builder.backoff_config(backoff), security)?;
    }
    Ok(builder.build().await?)
}

/// `builder` set up for the listener `security` describes: TLS trusting only its `ca` (and
/// presenting `cert`/`key` when given, for mutual TLS), SASL with its mechanism and user.
fn secure(mut builder: ClientBuilder, security: &Value) -> Result<ClientBuilder, Error> {
    let text = |name: &str| security[name].as_str().map(str::to_string);
    let protocol = text("protocol").ok_or("--security has no protocol")?;
    if matches!(protocol.as_str(), "SSL" | "SASL_SSL") {
        let ca = text("ca").ok_or("--security: TLS needs the ca")?;
        builder = builder.tls_config(Arc::new(tls_config(&ca, text("cert").zip(text("key")))?));
    }
    if matches!(protocol.as_str(), "SASL_PLAINTEXT" | "SASL_SSL") {
        let credentials = Credentials::new(
            text("username").ok_or("--security: SASL needs a username")?,
            text("password").ok_or("--security: SASL needs a password")?,
        );
        builder = builder.sasl_config(match text("mechanism").as_deref() {
            Some("PLAIN") => SaslConfig::Plain(credentials),
            Some("SCRAM-SHA-256") => SaslConfig::ScramSha256(credentials),
            Some("SCRAM-SHA-512") => SaslConfig::ScramSha512(credentials),
            other => return Err(format!("rskafka has no SASL mechanism {other:?} that takes a password").into()),
        });
    }
    Ok(builder)
}

/// rustls with `ca` as the only trust root (and ring, the one crypto provider built in, as
/// rskafka's transport-tls builds it); `client` is the PEM certificate chain and key to present.
fn tls_config(ca: &str, client: Option<(String, String)>) -> Result<rustls::ClientConfig, Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca)? {
        roots.add(certificate?)?;
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    Ok(match client {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(&cert)?.collect::<Result<Vec<_>, _>>()?;
            builder.with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(&key)?)?
        }
        None => builder.with_no_client_auth(),
    })
}

async fn partition(client: &Client, topic: &str, p: i32) -> Result<PartitionClient, Error> {
    Ok(client.partition_client(topic, p, UnknownTopicHandling::Retry).await?)
}

/// The topic's partition count once a Metadata answer names it. A topic just created through one
/// broker reaches the others' metadata a moment later (on Kafka as on several Ottla brokers), and
/// rskafka's `list_topics` asks whichever broker it likes and never retries, so ask again until
/// one names it or `deadline` passes.
async fn partition_count(client: &Client, topic: &str, deadline: tokio::time::Instant) -> Result<i32, Error> {
    loop {
        let topics = client.list_topics().await?;
        if let Some(found) = topics.iter().find(|t| t.name == topic) {
            return Ok(found.partitions.len() as i32);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("no topic {topic} in metadata").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create(args: &Args) -> Result<Value, Error> {
    let client = connect(args).await?;
    client.controller_client()?.create_topic(&args.topic, args.partitions, 1, 5_000).await?;
    Ok(json!({"created": true}))
}

async fn produce(args: &Args) -> Result<Value, Error> {
    let client = connect(args).await?;
    let partitions = partition_count(&client, &args.topic, tokio::time::Instant::now() + args.timeout).await?;
    // One batch per partition, its records in send order.
    let mut batches: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for i in 0..args.count {
        batches.entry(partition_for(&key(i), partitions)).or_default().push(i);
    }
    let mut delivered = vec![Value::Null; args.count];
    for (p, indexes) in batches {
        let records = indexes.iter().map(|&i| record(key(i), value(i))).collect();
        let offsets = partition(&client, &args.topic, p).await?.produce(records, Compression::NoCompression).await?;
        for (&i, offset) in indexes.iter().zip(offsets) {
            delivered[i] = json!([key(i), p, offset]);
        }
    }
    Ok(json!({"produced": args.count, "delivered": delivered}))
}

/// Every record of partition `p` from the earliest offset up to the end offset listed first.
async fn read_partition(args: &Args, client: &Client, topic: &str, p: i32) -> Result<Vec<Value>, Error> {
    let partition = partition(client, topic, p).await?;
    let end = partition.get_offset(OffsetAt::Latest).await?;
    let mut offset = partition.get_offset(OffsetAt::Earliest).await?;
    let deadline = tokio::time::Instant::now() + args.timeout;
    let mut records = vec![];
    while offset < end {
        if tokio::time::Instant::now() > deadline {
            return Err(format!("partition {p}: read stalled at offset {offset}, end {end}").into());
        }
        let (fetched, _high_watermark) = partition.fetch_records(offset, 1..1_048_576, 500).await?;
        for r in fetched {
            if r.offset >= end {
                break;
            }
            let text = |bytes: Option<Vec<u8>>| String::from_utf8(bytes.unwrap_or_default());
            records.push(json!([p, r.offset, text(r.record.key)?, text(r.record.value)?]));
            offset = r.offset + 1;
        }
    }
    Ok(records)
}

async fn consume(args: &Args) -> Result<Value, Error> {
    let client = connect(args).await?;
    let partitions = partition_count(&client, &args.topic, tokio::time::Instant::now() + args.timeout).await?;
    let mut records = vec![];
    for p in 0..partitions {
        records.extend(read_partition(args, &client, &args.topic, p).await?);
    }
    Ok(json!({"partitions": partitions, "records": records}))
}

async fn codecs(args: &Args) -> Result<Value, Error> {
    let client = connect(args).await?;
    let mut results = serde_json::Map::new();
    let codecs = [("gzip", Compression::Gzip), ("snappy", Compression::Snappy), ("lz4", Compression::Lz4), ("zstd", Compression::Zstd)];
    for (name, compression) in codecs {
        // rskafka's metadata requests never ask the broker to create a topic: create it here.
        let topic = format!("{}-{name}", args.topic);
        client.controller_client()?.create_topic(&topic, 1, 1, 5_000).await?;
        let records = (0..args.count).map(|i| record(key(i), value(i))).collect();
        partition(&client, &topic, 0).await?.produce(records, compression).await?;
        results.insert(name.to_string(), Value::Array(read_partition(args, &client, &topic, 0).await?));
    }
    Ok(json!({"codecs": results, "unavailable": {}}))
}

async fn run(args: &Args) -> Result<Value, Error> {
    match args.action.as_str() {
        "create" => create(args).await,
        "produce" => produce(args).await,
        "consume" => consume(args).await,
        "codecs" => codecs(args).await,
        other => Err(format!("action {other} is not offered: rskafka has no API for it").into()),
    }
}

#[tokio::main]
async fn main() {
    let outcome = match parse_args() {
        Ok(args) => match tokio::time::timeout(args.timeout, run(&args)).await {
            Ok(result) => result,
            Err(_) => Err(format!("{} did not finish within {:?}", args.action, args.timeout).into()),
        },
        Err(e) => Err(e),
    };
    match outcome {
        Ok(answer) => println!("{answer}"),
        Err(e) => {
            eprintln!("{e:?}");
            println!("{}", json!({"error": e.to_string()}));
            std::process::exit(1);
        }
    }
}
