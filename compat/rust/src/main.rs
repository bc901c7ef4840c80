//! The rskafka driver of Ottla's compat matrix (contract in compat/drivers/__init__.py).
//!
//! rskafka is a minimal client: topics are created and deleted through its controller client,
//! and each partition is produced to, fetched from and listed through its own partition client.
//! It has no partitioner, no consumer groups, no idempotent or transactional producer and no
//! config APIs, so this driver offers create, produce, consume and codecs only. Keys are placed
//! by the Java client's partitioner (murmur2 of the key, sign bit cleared, modulo the count).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::Utc;
use rskafka::client::partition::{Compression, OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;
use serde_json::{json, Value};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    bootstrap: String,
    topic: String,
    action: String,
    partitions: i32,
    count: usize,
    timeout: Duration,
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
    Ok(ClientBuilder::new(brokers).client_id("compat-rskafka").build().await?)
}

async fn partition(client: &Client, topic: &str, p: i32) -> Result<PartitionClient, Error> {
    Ok(client.partition_client(topic, p, UnknownTopicHandling::Retry).await?)
}

async fn partition_count(client: &Client, topic: &str) -> Result<i32, Error> {
    let topics = client.list_topics().await?;
    let found = topics.iter().find(|t| t.name == topic).ok_or_else(|| format!("no topic {topic} in metadata"))?;
    Ok(found.partitions.len() as i32)
}

async fn create(args: &Args) -> Result<Value, Error> {
    let client = connect(args).await?;
    client.controller_client()?.create_topic(&args.topic, args.partitions, 1, 5_000).await?;
    Ok(json!({"created": true}))
}

async fn produce(args: &Args) -> Result<Value, Error> {
    let client = connect(args).await?;
    let partitions = partition_count(&client, &args.topic).await?;
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
    let partitions = partition_count(&client, &args.topic).await?;
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
