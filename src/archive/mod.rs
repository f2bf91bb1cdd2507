//! The archive: where activity objects go, through two ports: [`ObjectWriter`] (probe, activity
//! objects, markers) and [`ObjectReader`] (list, read back). A run needs both ([`ObjectSink`]);
//! a reader of the archive needs only the second.
//!
//! Objects are immutable and written only if absent (`If-None-Match: *` on S3): a second write of
//! the same key reports [`PutOutcome::AlreadyPresent`] and changes nothing, which is what makes a
//! retried batch harmless.

pub mod encode;
pub mod inflate;
pub mod key;
pub mod s3;

use std::future::Future;

pub use encode::{
    EncodedObject, Encoder, decode_activities, encode_batch, read_activities, split_by_objects,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    /// An object with this key existed already; it was left as it was.
    AlreadyPresent,
}

/// The port activity objects and markers are written through.
pub trait ObjectWriter: Send + Sync {
    /// Checks that the destination exists, and takes writes, before a run commits anything.
    fn probe(&self) -> impl Future<Output = Result<(), SinkError>> + Send;
    /// Writes `object` unless its key exists.
    fn put_new(
        &self,
        object: &EncodedObject,
    ) -> impl Future<Output = Result<PutOutcome, SinkError>> + Send;
    /// Writes a non-activity object (a manifest, a marker) under a `_` segment, unless present.
    fn put_marker(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &'static str,
    ) -> impl Future<Output = Result<PutOutcome, SinkError>> + Send;
}

/// The port objects are read back through: a batch recovered, an hour reconciled, a marker.
pub trait ObjectReader: Send + Sync {
    /// The keys under `prefix`.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>, SinkError>> + Send;
    /// Reads an object back; `None` when it does not exist.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, SinkError>> + Send;
}

/// Both ports, as a run uses the archive: it writes, and reads back what it or an interrupted
/// run wrote. Every writer that is also a reader is one.
pub trait ObjectSink: ObjectWriter + ObjectReader {}

impl<T: ObjectWriter + ObjectReader> ObjectSink for T {}

/// What an operator does about a missing bucket, and about one the function may not use: the one
/// text both the error's message and verify's remedy give.
pub const BUCKET_CREATE: &str = "create it or fix OUTPUT_BUCKET";
pub const BUCKET_GRANT: &str = "grant s3:PutObject and s3:GetObject on <bucket>/<OUTPUT_PREFIX>* and s3:ListBucket on the prefix (and kms:GenerateDataKey and kms:Decrypt on a KMS bucket key)";

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("the output bucket {bucket:?} does not exist; {BUCKET_CREATE}")]
    BucketNotFound { bucket: String },
    #[error("not allowed to write to s3://{bucket}/{key}; {BUCKET_GRANT}")]
    AccessDenied {
        bucket: String,
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("S3 failed on s3://{bucket}/{key}")]
    Unavailable {
        bucket: String,
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

#[cfg(test)]
pub mod memory {
    //! An in-memory [`ObjectSink`] with S3's create-if-absent rule, for the core's tests.
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    #[derive(Default)]
    pub struct MemorySink {
        pub objects: Mutex<BTreeMap<String, Vec<u8>>>,
        /// Manifests and markers, apart from the activity objects.
        pub markers: Mutex<BTreeMap<String, Vec<u8>>>,
        /// Fail every put after this many successful ones (a crash after N writes).
        pub fail_after_puts: Mutex<Option<usize>>,
        pub missing_bucket: bool,
    }

    impl MemorySink {
        fn bucket(&self) -> Result<(), SinkError> {
            match self.missing_bucket {
                true => Err(SinkError::BucketNotFound { bucket: "memory".into() }),
                false => Ok(()),
            }
        }

        /// Every delivered line, by object, in key order.
        pub fn ids(&self) -> Vec<String> {
            self.objects
                .lock()
                .unwrap()
                .values()
                .flat_map(|b| decode_activities(b).unwrap())
                .map(|(id, _)| id)
                .collect()
        }
    }

    impl ObjectWriter for MemorySink {
        async fn probe(&self) -> Result<(), SinkError> {
            self.bucket()
        }
        async fn put_new(&self, object: &EncodedObject) -> Result<PutOutcome, SinkError> {
            self.bucket()?;
            let mut budget = self.fail_after_puts.lock().unwrap();
            if let Some(n) = budget.as_mut() {
                if *n == 0 {
                    return Err(SinkError::Unavailable {
                        bucket: "memory".into(),
                        key: object.key.clone(),
                        source: "injected".into(),
                    });
                }
                *n -= 1;
            }
            let mut objects = self.objects.lock().unwrap();
            if objects.contains_key(&object.key) {
                return Ok(PutOutcome::AlreadyPresent);
            }
            objects.insert(object.key.clone(), object.body.to_vec());
            Ok(PutOutcome::Created)
        }
        async fn put_marker(
            &self,
            key: &str,
            body: Vec<u8>,
            _: &'static str,
        ) -> Result<PutOutcome, SinkError> {
            self.bucket()?;
            let mut markers = self.markers.lock().unwrap();
            if markers.contains_key(key) {
                return Ok(PutOutcome::AlreadyPresent);
            }
            markers.insert(key.to_owned(), body);
            Ok(PutOutcome::Created)
        }
    }

    impl ObjectReader for MemorySink {
        async fn list(&self, prefix: &str) -> Result<Vec<String>, SinkError> {
            self.bucket()?;
            Ok(self
                .objects
                .lock()
                .unwrap()
                .keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect())
        }
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SinkError> {
            self.bucket()?;
            let markers = self.markers.lock().unwrap();
            Ok(self.objects.lock().unwrap().get(key).or_else(|| markers.get(key)).cloned())
        }
    }
}
