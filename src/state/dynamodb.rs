//! [`StateStore`] over DynamoDB: one item per stream, written whole with a version condition.
//!
//! The item is readable by an operator in the console: timestamps as RFC 3339 strings, the cursor
//! as stored, counts as numbers; only the dedupe memory is binary (about 9 bytes an id). Loads
//! are strongly consistent so a run always sees the previous run's last commit.
//!
//! DynamoDB items hold 400 KB. A dedupe memory too large to sit inline (a burst of over ~30,000
//! activities within one overlap period) moves to immutable chunk items
//! `{pk}#seen#{generation}#{i}`, written in one transaction with the state item (whose version
//! condition still decides) and replacing the previous generation's chunks. A commit that leaves
//! the memory unchanged (a write intent) keeps the current generation and writes the state item
//! alone.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use sha2::{Digest, Sha256};

use super::seen::SeenSet;
use super::{StateError, StateStore, SyncState, Versioned};
use item::{ItemError, from_item, item_size, to_item};

mod item;

/// DynamoDB's item size limit, less room for attribute names and rounding.
const ITEM_LIMIT: usize = 400 * 1024 - 2048;
/// A dedupe memory up to this size stays inside the state item.
const INLINE_LIMIT: usize = 300 * 1024;
/// The size of one chunk item's data.
const CHUNK_BYTES: usize = 350 * 1024;
/// A transaction writes at most 4 MB: the state item and up to this many chunks.
const MAX_CHUNKS: usize = 10;

pub struct DynamoStore {
    client: Client,
    table: String,
    /// Per stream, the chunk generation last loaded or committed, to reuse it or delete it.
    chunks: Mutex<HashMap<String, Chunks>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Chunks {
    generation: u64,
    count: usize,
    digest: [u8; 32],
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore { client, table: table.into(), chunks: Mutex::new(HashMap::new()) }
    }

    fn remembered(&self, stream: &str) -> Option<Chunks> {
        self.chunks.lock().unwrap_or_else(|e| e.into_inner()).get(stream).cloned()
    }

    fn remember(&self, stream: &str, chunks: Option<Chunks>) {
        let mut all = self.chunks.lock().unwrap_or_else(|e| e.into_inner());
        match chunks {
            Some(c) => all.insert(stream.to_owned(), c),
            None => all.remove(stream),
        };
    }

    async fn get(&self, pk: String) -> Result<Option<HashMap<String, AttributeValue>>, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.classify(e))?;
        Ok(out.item)
    }

    /// Reads a chunked dedupe memory back, in order.
    async fn load_chunks(
        &self,
        stream: &str,
        generation: u64,
        count: usize,
    ) -> Result<Vec<u8>, StateError> {
        let mut bytes = Vec::with_capacity(count * CHUNK_BYTES);
        for index in 0..count {
            let item = self
                .get(chunk_pk(stream, generation, index))
                .await?
                .ok_or_else(|| corrupt(stream, ItemError::ChunkMissing { index, generation }))?;
            match item.get("data") {
                Some(AttributeValue::B(b)) => bytes.extend_from_slice(b.as_ref()),
                _ => return Err(corrupt(stream, ItemError::ChunkData { index })),
            }
        }
        Ok(bytes)
    }

    fn classify<E, R>(&self, e: SdkError<E, R>) -> StateError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let table = self.table.clone();
        match e.code() {
            Some("ResourceNotFoundException") => StateError::TableNotFound { table },
            Some("AccessDeniedException") | Some("UnrecognizedClientException") => {
                StateError::AccessDenied { table, source: Box::new(e) }
            }
            _ => StateError::Unavailable { table, source: Box::new(e) },
        }
    }
}

impl StateStore for DynamoStore {
    async fn load(&self, stream: &str) -> Result<Option<Versioned>, StateError> {
        let Some(item) = self.get(stream.to_owned()).await? else {
            self.remember(stream, None);
            return Ok(None);
        };
        let mut loaded = from_item(&item).map_err(|source| corrupt(stream, source))?;
        let chunked = match (item.get("seen_generation"), item.get("seen_chunks")) {
            (Some(AttributeValue::N(g)), Some(AttributeValue::N(c))) => {
                Some((g.parse::<u64>(), c.parse::<usize>()))
            }
            _ => None,
        };
        match chunked {
            None => self.remember(stream, None),
            Some((Ok(generation), Ok(count))) if count <= MAX_CHUNKS => {
                let bytes = self.load_chunks(stream, generation, count).await?;
                loaded.state.seen =
                    SeenSet::decode(&bytes).map_err(|e| corrupt(stream, ItemError::Seen(e)))?;
                let digest = Sha256::digest(&bytes).into();
                self.remember(stream, Some(Chunks { generation, count, digest }));
            }
            Some(_) => {
                return Err(corrupt(stream, ItemError::ChunkCount { most: MAX_CHUNKS }));
            }
        }
        Ok(Some(loaded))
    }

    async fn commit(
        &self,
        stream: &str,
        state: &SyncState,
        expected: Option<u64>,
    ) -> Result<u64, StateError> {
        let version = expected.unwrap_or(0) + 1;
        let previous = self.remembered(stream);
        let Planned { item, chunks, new_chunks, stale } =
            plan_item(stream, state, version, previous.as_ref())?;
        let result = if new_chunks.is_empty() && stale.is_empty() {
            self.put_state(item, expected).await
        } else {
            let chunk_items = new_chunks.into_iter().enumerate().map(|(i, data)| {
                let generation = chunks.as_ref().map_or(version, |c| c.generation);
                HashMap::from([
                    ("pk".to_owned(), AttributeValue::S(chunk_pk(stream, generation, i))),
                    ("data".to_owned(), AttributeValue::B(Blob::new(data))),
                ])
            });
            self.transact_state(item, expected, chunk_items.collect(), stale).await
        };
        match result {
            Ok(()) => {}
            // The SDK resends a write whose answer was lost; the resend then meets the version the
            // first one wrote. That is this run's own commit, not another run's.
            Err(StateError::Conflict { .. })
                if self.committed_by_us(stream, state, version).await =>
            {
                tracing::info!(stream, version, "a retried commit found its own earlier write");
            }
            Err(e) => return Err(e),
        }
        self.remember(stream, chunks);
        Ok(version)
    }
}

impl DynamoStore {
    /// Whether the stored item is `state` at `version`, as this run's commit would have left it.
    async fn committed_by_us(&self, stream: &str, state: &SyncState, version: u64) -> bool {
        let Ok(Some(item)) = self.get(stream.to_owned()).await else { return false };
        let stored_version =
            item.get("version").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok());
        let stamp = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        stored_version == Some(version)
            && stamp("updated_by") == state.updated_by
            && stamp("updated_at") == state.updated_at.map(|t| t.to_string())
    }

    fn condition(expected: Option<u64>) -> (&'static str, Option<AttributeValue>) {
        match expected {
            None => ("attribute_not_exists(pk)", None),
            Some(v) => ("version = :expected", Some(AttributeValue::N(v.to_string()))),
        }
    }

    async fn put_state(
        &self,
        item: HashMap<String, AttributeValue>,
        expected: Option<u64>,
    ) -> Result<(), StateError> {
        let (condition, value) = Self::condition(expected);
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition);
        let request = match value {
            Some(v) => request.expression_attribute_values(":expected", v),
            None => request,
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                Err(StateError::Conflict { expected })
            }
            Err(e) => Err(self.classify(e)),
        }
    }

    /// The state item, new chunks and deletions of stale chunks, all or nothing.
    async fn transact_state(
        &self,
        item: HashMap<String, AttributeValue>,
        expected: Option<u64>,
        chunks: Vec<HashMap<String, AttributeValue>>,
        stale: Vec<String>,
    ) -> Result<(), StateError> {
        let (condition, value) = Self::condition(expected);
        let state_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(
                value.map(|v| HashMap::from([(":expected".to_owned(), v)])),
            )
            .build()
            .map_err(|e| StateError::Unavailable {
                table: self.table.clone(),
                source: Box::new(e),
            })?;
        let mut writes = vec![TransactWriteItem::builder().put(state_put).build()];
        for chunk in chunks {
            let put =
                Put::builder().table_name(&self.table).set_item(Some(chunk)).build().map_err(
                    |e| StateError::Unavailable { table: self.table.clone(), source: Box::new(e) },
                )?;
            writes.push(TransactWriteItem::builder().put(put).build());
        }
        for pk in stale {
            let delete = Delete::builder()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(pk))
                .build()
                .map_err(|e| StateError::Unavailable {
                    table: self.table.clone(),
                    source: Box::new(e),
                })?;
            writes.push(TransactWriteItem::builder().delete(delete).build());
        }
        match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let lost_race = e.as_service_error().is_some_and(|s| match s {
                    TransactWriteItemsError::TransactionCanceledException(t) => t
                        .cancellation_reasons()
                        .first()
                        .is_some_and(|r| r.code() == Some("ConditionalCheckFailed")),
                    _ => false,
                });
                if lost_race {
                    Err(StateError::Conflict { expected })
                } else {
                    Err(self.classify(e))
                }
            }
        }
    }
}

/// A commit worked out before any call: the state item, where its dedupe memory is, the chunk
/// items to write and those of the previous generation to delete.
struct Planned {
    item: HashMap<String, AttributeValue>,
    chunks: Option<Chunks>,
    new_chunks: Vec<Vec<u8>>,
    stale: Vec<String>,
}

/// Plans the commit of `state` at `version`, given the chunks the previous commit left: the memory
/// inline when small, else the same chunks when unchanged (a write intent), else new ones.
fn plan_item(
    stream: &str,
    state: &SyncState,
    version: u64,
    previous: Option<&Chunks>,
) -> Result<Planned, StateError> {
    let seen = state.seen.encode();
    let (mut item, chunks, new_chunks) = if seen.len() <= INLINE_LIMIT {
        (to_item(stream, state, version, Some(seen)), None, Vec::new())
    } else {
        let digest: [u8; 32] = Sha256::digest(&seen).into();
        match previous {
            Some(p) if p.digest == digest => {
                (to_item(stream, state, version, None), Some(p.clone()), Vec::new())
            }
            _ => {
                let pieces: Vec<Vec<u8>> = seen.chunks(CHUNK_BYTES).map(<[u8]>::to_vec).collect();
                if pieces.len() > MAX_CHUNKS {
                    return Err(StateError::TooLarge { bytes: seen.len() });
                }
                let chunks = Chunks { generation: version, count: pieces.len(), digest };
                (to_item(stream, state, version, None), Some(chunks), pieces)
            }
        }
    };
    if let Some(c) = &chunks {
        item.insert("seen_generation".into(), AttributeValue::N(c.generation.to_string()));
        item.insert("seen_chunks".into(), AttributeValue::N(c.count.to_string()));
    }
    let bytes = item_size(&item);
    if bytes > ITEM_LIMIT {
        return Err(StateError::TooLarge { bytes });
    }
    let stale = match previous {
        Some(p) if chunks.as_ref().is_none_or(|c| c.generation != p.generation) => {
            (0..p.count).map(|i| chunk_pk(stream, p.generation, i)).collect()
        }
        _ => Vec::new(),
    };
    Ok(Planned { item, chunks, new_chunks, stale })
}

/// The key of chunk `index` of the dedupe memory of `generation`.
fn chunk_pk(stream: &str, generation: u64, index: usize) -> String {
    format!("{stream}#seen#{generation}#{index}")
}

fn corrupt(stream: &str, source: ItemError) -> StateError {
    StateError::Corrupt { pk: stream.to_owned(), source: Box::new(source) }
}
