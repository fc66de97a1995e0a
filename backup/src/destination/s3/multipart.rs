//! Uploads in parts: create, upload each part (retried alone), complete; aborted on any
//! failure, so the object appears whole or not at all, with memory bounded by one part.

use std::fs::File;
use std::io::Read;

use rusty_s3::actions::{CompleteMultipartUploadResponse, CreateMultipartUpload};

use super::super::retry::{self, Failure, Policy};
use super::store::{S3Target, MAX_PARTS};

impl S3Target {
    pub(super) fn put_multipart(
        &self,
        key: &str,
        file: &mut File,
        len: u64,
    ) -> Result<(), Failure> {
        let part_size = self.options.part_size.max(len.div_ceil(MAX_PARTS));
        let policy = &self.options.retry;
        let upload_id = policy.run(|| {
            let action = self
                .bucket
                .create_multipart_upload(Some(&self.credentials), key);
            let response = self.send(action, &[], 0, false)?.expect("not absent");
            let xml = Self::read_xml(response)?;
            CreateMultipartUpload::parse_response(&xml)
                .map(|r| r.upload_id().to_string())
                .map_err(|e| {
                    Failure::fatal(format!(
                        "the store's answer to a multipart upload is not S3 XML: {e}"
                    ))
                })
        })?;
        let uploaded = self.upload_parts(key, &upload_id, file, part_size);
        if uploaded.is_err() {
            // Best effort: parts left behind cost storage until the store's lifecycle
            // rules remove them, but never make a partial object visible.
            let quick = Policy {
                attempts: 2,
                ..policy.clone()
            };
            let _ = quick.run(|| {
                let action =
                    self.bucket
                        .abort_multipart_upload(Some(&self.credentials), key, &upload_id);
                self.send(action, &[], 0, true).map(drop)
            });
        }
        uploaded
    }

    fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        file: &mut File,
        part_size: u64,
    ) -> Result<(), Failure> {
        let policy = &self.options.retry;
        let mut etags = Vec::new();
        let mut part = Vec::new();
        loop {
            part.clear();
            (&mut *file)
                .take(part_size)
                .read_to_end(&mut part)
                .map_err(|e| Failure::fatal(format!("cannot read the file to upload: {e}")))?;
            if part.is_empty() && !etags.is_empty() {
                break;
            }
            let number = u16::try_from(etags.len() + 1)
                .map_err(|_| Failure::fatal("more than 65535 parts"))?;
            let etag = policy.run(|| {
                let action =
                    self.bucket
                        .upload_part(Some(&self.credentials), key, number, upload_id);
                let response = self.send(action, &part, part.len() as u64, false)?;
                let response = response.expect("not absent");
                response
                    .headers()
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
                    .ok_or_else(|| Failure::fatal("the store answered a part without an ETag"))
            })?;
            etags.push(etag);
            if (part.len() as u64) < part_size {
                break;
            }
        }
        policy.run(|| {
            let action = self.bucket.complete_multipart_upload(
                Some(&self.credentials),
                key,
                upload_id,
                etags.iter().map(String::as_str),
            );
            let body = action.clone().body();
            let response = self.send(action, body.as_bytes(), body.len() as u64, false)?;
            // S3 may answer 200 and still fail: the body says which.
            let xml = Self::read_xml(response.expect("not absent"))?;
            match CompleteMultipartUploadResponse::parse(&xml) {
                Ok(_) => Ok(()),
                Err(_) => Err(retry::refusal(500, &xml).failure),
            }
        })
    }
}
