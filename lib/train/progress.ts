// Progress lines for long runs: rewritten in place on a terminal, one line every few seconds
// otherwise (logs, CI), always with images/s and an ETA.
export class Progress {
  private last = 0;
  private readonly tty: boolean;
  constructor(private readonly write: (s: string) => void = (s) => process.stdout.write(s), tty = !!process.stdout.isTTY, private readonly everyMs = 5000) {
    this.tty = tty;
  }

  update(line: string, force = false): void {
    const now = Date.now();
    if (this.tty) {
      this.write(`\r\x1b[K${line}`);
      return;
    }
    if (force || now - this.last >= this.everyMs) {
      this.last = now;
      this.write(`${line}\n`);
    }
  }

  done(line: string): void {
    this.write(this.tty ? `\r\x1b[K${line}\n` : `${line}\n`);
    this.last = 0;
  }
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60), sec = Math.round(s % 60);
  return m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}
