//! The certificate of a run (`--certificate`): every rewrite of the log with the region
//! it changed, the lossy steps with what they measured, and the digests of the two files.

use crate::report::Report;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;
use whittle_certify::record::{Certificate, FORMAT, FileDigest, LossyStep, Rewrite};

/// Hex SHA-256 of a file, read in 1 MiB pieces (a model may be larger than memory).
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The certificate of `report`, a run from `original` that wrote `optimized`.
pub fn certificate(
    report: &Report,
    original: &Path,
    optimized: &Path,
) -> std::io::Result<Certificate> {
    let digest = |p: &Path| -> std::io::Result<FileDigest> {
        Ok(FileDigest {
            path: p.display().to_string(),
            sha256: file_sha256(p)?,
        })
    };
    let mut rewrites: Vec<Rewrite> = report
        .rewrites
        .iter()
        .map(|r| Rewrite {
            pass: r.pass.to_string(),
            rule: r.rule.to_string(),
            site: r.node.clone(),
            region: None,
        })
        .collect();
    for (k, region) in &report.regions {
        if let Some(rw) = rewrites.get_mut(*k) {
            rw.region = Some(region.clone());
        }
    }
    let lossy = report
        .notes
        .iter()
        .map(|(site, measured)| LossyStep {
            site: site.clone(),
            measured: measured.clone(),
        })
        .collect();
    Ok(Certificate {
        format: FORMAT,
        whittle: env!("CARGO_PKG_VERSION").to_string(),
        original: digest(original)?,
        optimized: digest(optimized)?,
        rewrites,
        lossy,
    })
}
