import { MAX_FRACTION, provisioningProgress } from '../progress';
import { view } from './fake';

describe('provisioningProgress', () => {
  const provisioning = (elapsedSeconds: number, expectedSeconds: number | null) =>
    view('rent_1', { provisioning: { elapsedSeconds, expectedSeconds } });

  it("moves with time against gpuoutlet's estimate, from the server's elapsed at receipt", () => {
    const rental = provisioning(9, 45);
    const at = 100_000;
    expect(provisioningProgress(rental, at, at)).toMatchObject({
      fraction: 0.2,
      elapsedSeconds: 9,
      expectedSeconds: 45,
      text: "about 36s left of gpuoutlet's 45s estimate"
    });
    // 9 s later by the browser's clock: no new reply, no poll, and the bar has moved.
    expect(provisioningProgress(rental, at, at + 9_000)?.fraction).toBeCloseTo(0.4);
    expect(provisioningProgress(rental, at, at + 9_000)?.text).toBe(
      "about 27s left of gpuoutlet's 45s estimate"
    );
    // A clock that went backwards does not move it back past the reply.
    expect(provisioningProgress(rental, at, at - 5_000)?.elapsedSeconds).toBe(9);
  });

  it('never says done before the rental is running, and says when it is late', () => {
    const late = provisioningProgress(provisioning(70, 45), 0, 0);
    expect(late?.fraction).toBe(MAX_FRACTION);
    expect(late?.text).toBe('taking longer than the 45s gpuoutlet estimated (1m 10s so far)');
  });

  it('has no fraction without an estimate (a rental made elsewhere)', () => {
    const progress = provisioningProgress(provisioning(12, null), 0, 3_000);
    expect(progress?.fraction).toBeNull();
    expect(progress?.text).toBe('15s so far (no estimate: it was not created here)');
  });

  it('is nothing once the rental is past provisioning', () => {
    const running = view('rent_1', {
      status: 'running',
      provisioning: { elapsedSeconds: 30, expectedSeconds: 45 }
    });
    expect(provisioningProgress(running, 0, 0)).toBeNull();
    expect(provisioningProgress(view('rent_1'), 0, 0)).toBeNull();
    expect(provisioningProgress({ ...provisioning(3, 45), gone: true }, 0, 0)).toBeNull();
  });
});
