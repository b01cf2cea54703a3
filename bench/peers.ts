// The peers: PyTorch (bench/peer/torch_kw.py: the official KW algorithm written out in PyTorch for
// KW-ResNet-18, KW-MobileNetV2 and KW-ConvNeXt-T; torchvision's ResNet-18, MobileNetV2 and ConvNeXt-T)
// for train and eval, and onnxruntime-node for eval on the same models exported to ONNX with a fixed
// batch (cached in bench/.cache/onnx). Each runs in its own process.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { ResolvedCase } from './cases';
import { findUp } from './cases';
import { ChildResult, nodeScript, repoRoot, runChild } from './children';

/** Models torch_kw.py builds (its KW_MODELS + PLAIN_MODELS; its --selfcheck proves each against the golden counts). */
export const PEER_MODELS = ['resnet18', 'kw_resnet18', 'mobilenetv2_050', 'mobilenetv2_100', 'kw_mobilenetv2_050',
  'kw_mobilenetv2_100', 'convnext_tiny', 'kw_convnext_tiny'];

export interface TorchResult {
  peer: string;
  threads: number;
  params: number;
  train_s?: number;
  eval_s: number;
  train_reps?: number;
  eval_reps: number;
  peak_rss_mb: number;
  onnx?: string;
}

export interface OrtResult {
  peer: string;
  threads: number;
  eval_s: number;
  eval_reps: number;
  peak_rss_mb: number;
}

/** One golden case the peer reproduced: a whole model (logits) or KW layers (outputs and input gradients). */
export interface GoldenForward {
  case: string;
  max_abs_err_eval?: number;
  max_abs_err_train?: number;
  max_abs_err_out?: number;
  max_abs_err_grad_in?: number;
  ok: boolean;
}

export interface SelfCheck {
  ok: boolean;
  param_counts: Record<string, { peer: number; golden: number; warehouses?: number; golden_warehouses?: number; ok: boolean }>;
  /** The KW-ResNet-18 model case. */
  golden_forward: GoldenForward;
  /** Every golden case checked (the KW-ResNet-18 one first). */
  golden?: GoldenForward[];
}

/** A python3 that imports torch: KW_BENCH_PYTHON, then python3 on PATH (may be a pyenv without torch), then /usr/bin/python3. */
export function findTorchPython(): { python: string | null; tried: string[] } {
  const candidates = [process.env.KW_BENCH_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p);
  for (const p of candidates) {
    const r = spawnSync(p, ['-c', 'import torch, torchvision'], { encoding: 'utf8', timeout: 120000 });
    if (r.status === 0) return { python: p, tried: candidates };
  }
  return { python: null, tried: candidates };
}

const script = (name: string): string => path.join(repoRoot(), 'bench', 'peer', name);

/** Checks the peer against the golden parameter counts and golden forwards (KW-ResNet-18, MobileNetV2, depthwise and ConvNeXt KW layers). */
export function torchSelfCheck(python: string): ChildResult<SelfCheck> {
  const golden = process.env.KW_GOLDEN_DIR ?? findUp(path.join('shared', 'golden'));
  if (!golden) return { ok: false, error: 'golden folder not found (set KW_GOLDEN_DIR)' };
  return runChild<SelfCheck>(python, [script('torch_kw.py'), '--selfcheck', golden, '--configs', path.join(repoRoot(), 'configs')]);
}

function peerArgs(c: ResolvedCase): string[] {
  return [script('torch_kw.py'), '--model', c.model, '--kw-config', JSON.stringify(c.kwConfig),
    '--batch', String(c.batch), '--size', String(c.size), '--classes', String(c.classes)];
}

export function runTorchPeer(python: string, c: ResolvedCase, reps?: number): ChildResult<TorchResult> {
  return runChild<TorchResult>(python, [...peerArgs(c), ...(reps ? ['--reps', String(reps)] : [])]);
}

/** The case's model exported by the peer to ONNX (fixed batch), cached; returns its path. */
export function exportOnnx(python: string, c: ResolvedCase): ChildResult<string> {
  const file = onnxPath(c);
  if (fs.existsSync(file)) return { ok: true, value: file };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const r = runChild<{ onnx: string }>(python, [...peerArgs(c), '--export', tmp]);
  if (!r.ok) return r;
  fs.renameSync(tmp, file);
  return { ok: true, value: file };
}

/** Where the fixed-batch ONNX export of a case is cached. */
export function onnxPath(c: ResolvedCase): string {
  const ratio = c.cellNumRatio === null ? 'plain' : `r${c.cellNumRatio}`;
  return path.join(repoRoot(), 'bench', '.cache', 'onnx', `${c.model}_${ratio}_b${c.batch}_s${c.size}_c${c.classes}.onnx`);
}

/** onnxruntime-node from KW_BENCH_ORT (a path to the package folder), or why not. */
export function findOrt(): { path: string | null; why: string } {
  const p = process.env.KW_BENCH_ORT;
  if (!p) return { path: null, why: 'KW_BENCH_ORT is not set (e.g. /work/peers/ort/node_modules/onnxruntime-node)' };
  try {
    require.resolve(path.resolve(p));
    return { path: path.resolve(p), why: '' };
  } catch (e) {
    return { path: null, why: `KW_BENCH_ORT=${p}: ${(e as Error).message.split('\n')[0]}` };
  }
}

export function runOrtPeer(ortPath: string, onnx: string, c: ResolvedCase, reps?: number): ChildResult<OrtResult> {
  return runChild<OrtResult>(process.execPath, [...nodeScript('ort_child'),
    JSON.stringify({ ort: ortPath, onnx, shape: [c.batch, 3, c.size, c.size], reps })]);
}
