//! Any bytes as a pipeline file: loading must never panic. A file that loads is bound to its
//! default params and every task rendered (templates, quoting); one that does not has its
//! diagnostics rendered (spans, line/column arithmetic on arbitrary text). The same bytes are
//! also read in pieces, as big files are.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use plumb::instance::Instance;
use plumb::pipeline::Pipeline;
use plumb::spec::ProjectFile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The cutter that reads big files in pieces sees arbitrary text too (tiny pieces here).
    let _ = plumb::spec::parse_pipeline_in_pieces(text, 16);
    let loaded = Pipeline::from_text(Path::new("/fuzz/p.toml"), Path::new("p.toml"), text.to_string(), &ProjectFile::default());
    match loaded {
        Ok(p) => {
            let order = p.graph.topological_order();
            assert_eq!(order.len(), p.tasks.len(), "a loaded pipeline has no cycle");
            if let Ok(inst) = Instance::new(&p, &[], chrono::Utc::now()) {
                for t in 0..p.tasks.len().min(64) {
                    let _ = inst.resolve(t, Path::new("/fuzz"), None);
                    let _ = inst.fingerprint(t, Path::new("/fuzz"));
                }
            }
        }
        Err(d) => {
            let _ = d.render();
        }
    }
});
