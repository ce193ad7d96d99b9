/** Generated tokens per second over a sliding window, kept in one-second buckets. */
export class ThroughputWindow {
  private readonly buckets: number[];
  private currentSecond = 0;

  constructor(
    private readonly windowSeconds = 10,
    private readonly now: () => number = Date.now,
  ) {
    this.buckets = new Array<number>(windowSeconds).fill(0);
  }

  record(tokens: number): void {
    this.advance();
    this.buckets[this.currentSecond % this.windowSeconds] += tokens;
  }

  tokensPerSecond(): number {
    this.advance();
    return this.buckets.reduce((sum, n) => sum + n, 0) / this.windowSeconds;
  }

  private advance(): void {
    const second = Math.floor(this.now() / 1000);
    if (this.currentSecond === 0) this.currentSecond = second;
    const elapsed = Math.min(second - this.currentSecond, this.windowSeconds);
    for (let i = 1; i <= elapsed; i++) this.buckets[(this.currentSecond + i) % this.windowSeconds] = 0;
    this.currentSecond = second;
  }
}
