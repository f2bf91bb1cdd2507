//! [`ObjectWriter`] and [`ObjectReader`] over Amazon S3: conditional `PutObject` (`If-None-Match: *`), `GetObject`.
//!
//! A 412 answer means an object with the key exists: since keys are fixed by content, the batch is
//! already in the archive and nothing more is written. A 409 (a conditional write racing another
//! on the same key) is retried, as S3 asks.
//!
//! An activity object is sent with the SHA-256 the encoder took of it (`x-amz-checksum-sha256`,
//! covered by the request's signature): S3 refuses a body that does not match it and keeps it with
//! the object, where `GetObjectAttributes` shows the same digest the run's manifest lists. The
//! signature then need not hash the payload a second time (`UNSIGNED-PAYLOAD`, over HTTPS).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;
use aws_smithy_types::base64;
use bytes::Bytes;

use super::key::probe_key;
use super::{EncodedObject, ObjectReader, ObjectWriter, PutOutcome, SinkError};
use crate::clock::{Clock, SystemClock};

/// The S3 adapter; `C` is the clock its retries wait on (the system's in Lambda).
pub struct S3Sink<C = SystemClock> {
    client: Client,
    bucket: String,
    prefix: String,
    /// Whether this process has written the probe key (proving s3:PutObject under the prefix).
    write_checked: AtomicBool,
    clock: C,
}

impl S3Sink {
    pub fn new(client: Client, bucket: impl Into<String>, prefix: impl Into<String>) -> S3Sink {
        S3Sink {
            client,
            bucket: bucket.into(),
            prefix: prefix.into(),
            write_checked: AtomicBool::new(false),
            clock: SystemClock,
        }
    }
}

impl<C: Clock> S3Sink<C> {
    /// This adapter with its retries waiting on `clock`.
    pub fn with_clock<D: Clock>(self, clock: D) -> S3Sink<D> {
        let S3Sink { client, bucket, prefix, write_checked, .. } = self;
        S3Sink { client, bucket, prefix, write_checked, clock }
    }

    fn classify<E, R>(&self, key: &str, e: SdkError<E, R>) -> SinkError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let bucket = self.bucket.clone();
        let key = key.to_owned();
        match e.code() {
            Some("NoSuchBucket") => SinkError::BucketNotFound { bucket },
            Some("AccessDenied")
            | Some("AllAccessDisabled")
            | Some("KMS.AccessDeniedException") => {
                SinkError::AccessDenied { bucket, key, source: Box::new(e) }
            }
            _ => SinkError::Unavailable { bucket, key, source: Box::new(e) },
        }
    }
}

fn status<E, R: HttpStatus>(e: &SdkError<E, R>) -> Option<u16> {
    e.raw_response().map(HttpStatus::status)
}

trait HttpStatus {
    fn status(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

impl<C: Clock> S3Sink<C> {
    /// `PutObject` with `If-None-Match: *`: 412 means present; a 409 race is retried.
    async fn put_if_absent(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        metadata: &[(&str, String)],
        sha256: Option<&[u8; 32]>,
    ) -> Result<PutOutcome, SinkError> {
        const CONFLICT_RETRIES: u32 = 3;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .if_none_match("*")
                .content_type(content_type)
                .body(ByteStream::from(body.clone()));
            for (name, value) in metadata {
                request = request.metadata(*name, value);
            }
            let sent = match sha256 {
                Some(digest) => {
                    request
                        .checksum_algorithm(ChecksumAlgorithm::Sha256)
                        .checksum_sha256(base64::encode(digest))
                        .customize()
                        .disable_payload_signing()
                        .send()
                        .await
                }
                None => request.send().await,
            };
            match sent {
                Ok(_) => return Ok(PutOutcome::Created),
                Err(e) if status(&e) == Some(412) || e.code() == Some("PreconditionFailed") => {
                    return Ok(PutOutcome::AlreadyPresent);
                }
                Err(e) if status(&e) == Some(409) && attempt <= CONFLICT_RETRIES => {
                    tracing::warn!(key, attempt, "conditional write conflict; retrying");
                    self.clock.sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                Err(e) => return Err(self.classify(key, e)),
            }
        }
    }

    /// Whether `key` is listed: the first key of a listing by the key itself is the key if it
    /// exists (any other key with that prefix sorts after it).
    async fn exists(&self, key: &str) -> Result<bool, SinkError> {
        let listed = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(key)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| self.classify(key, e))?;
        Ok(listed.contents().first().and_then(|o| o.key()) == Some(key))
    }
}

impl<C: Clock> ObjectWriter for S3Sink<C> {
    /// Once per process, a create-if-absent write of the probe key: a missing bucket or a refused
    /// write then fails the run before it commits anything (S3 checks the permission before the
    /// condition, so "already there" proves it too). After that, one read per run: the bucket may
    /// have gone since.
    async fn probe(&self) -> Result<(), SinkError> {
        let key = probe_key(&self.prefix);
        if !self.write_checked.load(Ordering::Relaxed) {
            return match self.put_if_absent(&key, Bytes::new(), "text/plain", &[], None).await {
                Ok(_) => {
                    self.write_checked.store(true, Ordering::Relaxed);
                    Ok(())
                }
                // A transient failure is not the run's to fail on here: the writes will tell.
                Err(SinkError::Unavailable { .. }) => Ok(()),
                Err(refused) => Err(refused),
            };
        }
        match self.client.get_object().bucket(&self.bucket).key(&key).send().await {
            Ok(_) => Ok(()),
            Err(e) => match self.classify(&key, e) {
                // The bucket exists: a missing or forbidden probe key says nothing more.
                SinkError::AccessDenied { .. } | SinkError::Unavailable { .. } => Ok(()),
                missing => Err(missing),
            },
        }
    }

    async fn put_new(&self, object: &EncodedObject) -> Result<PutOutcome, SinkError> {
        let metadata = [
            ("activity-count", object.activities.to_string()),
            ("first-activity-id", object.first_id.clone()),
            ("last-activity-id", object.last_id.clone()),
        ];
        // No Content-Encoding: readers would unzip in transit and then fail on `.gz`.
        let body = object.body.clone();
        self.put_if_absent(&object.key, body, "application/gzip", &metadata, Some(&object.sha256))
            .await
    }

    async fn put_marker(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &'static str,
    ) -> Result<PutOutcome, SinkError> {
        self.put_if_absent(key, body.into(), content_type, &[], None).await
    }
}

impl<C: Clock> ObjectReader for S3Sink<C> {
    async fn list(&self, prefix: &str) -> Result<Vec<String>, SinkError> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.classify(prefix, e))?;
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        }
        Ok(keys)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SinkError> {
        match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => {
                let bytes = out.body.collect().await.map_err(|e| SinkError::Unavailable {
                    bucket: self.bucket.clone(),
                    key: key.to_owned(),
                    source: Box::new(e),
                })?;
                Ok(Some(bytes.into_bytes().to_vec()))
            }
            Err(e) if e.code() == Some("NoSuchKey") => Ok(None),
            // S3 answers a missing key with 403 to a role whose s3:ListBucket does not cover the
            // key itself (the stack allows listing by prefix only), and an object it may not read
            // with 403 too. Taking an unreadable object for a missing one would deliver its
            // activities again: a listing of the key tells the two apart.
            Err(e) if e.code() == Some("AccessDenied") && key.starts_with(&self.prefix) => {
                if self.exists(key).await? {
                    Err(self.classify(key, e))
                } else {
                    tracing::debug!(key, "403 on read of a key that is not listed: absent");
                    Ok(None)
                }
            }
            Err(e) => Err(self.classify(key, e)),
        }
    }
}
