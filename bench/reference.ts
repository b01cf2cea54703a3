// The reference figures issue 9 quotes for the official KernelWarehouse code on this kind of
// machine (2 cores, PyTorch 1.13 CPU with oneDNN, 2 threads; onnxruntime-node 1.30 on the official
// models exported with a fixed batch). They were measured on an idle machine: on a loaded one the
// peers run side by side in the same run are the fair comparison, these a second opinion.
export interface Reference {
  train_s?: number;
  eval_s?: number;
  ort_eval_s?: number;
  peak_rss_mb?: number;
}

export const ISSUE_REFERENCE: Record<string, Reference> = {
  'resnet18:-:64:32': { train_s: 0.13, eval_s: 0.030, ort_eval_s: 0.022, peak_rss_mb: 430 },
  'kw_resnet18:1:64:32': { train_s: 14.3, eval_s: 4.02, ort_eval_s: 2.96, peak_rss_mb: 4300 },
  'resnet18:-:16:224': { train_s: 1.15, eval_s: 0.35, ort_eval_s: 0.26, peak_rss_mb: 950 },
  'kw_resnet18:1:16:224': { train_s: 4.29, eval_s: 1.20, ort_eval_s: 1.36, peak_rss_mb: 1800 },
  'kw_mobilenetv2_100:1:64:32': { train_s: 3.1 },
};
