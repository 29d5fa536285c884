// The preference losses, from the published formulas (and TRL's DPOTrainer / ORPOTrainer conventions), on summed
// sequence log-probabilities. Per pair i, with π the policy's and ρ the reference's log p of chosen (c) / rejected (r):
//   DPO sigmoid (Rafailov et al. 2023):  z = β·((π_c − ρ_c) − (π_r − ρ_r)),  L = −log σ(z)
//   IPO (Azar et al. 2023; TRL loss_type "ipo", on per-token MEAN log p):  h = (π̄_c − ρ̄_c) − (π̄_r − ρ̄_r),  L = (h − 1/(2β))²
//   ORPO (Hong et al. 2024; no reference, on mean log p a = π̄_c, b = π̄_r):
//        log odds = (a − b) − (log(1 − eᵃ) − log(1 − eᵇ)),   L = NLL(chosen) − λ·log σ(log odds)
//        with NLL the chosen tokens' mean cross-entropy over the optimizer step.
// Rewards (logged): DPO/IPO β·(π − ρ) (IPO on means), ORPO λ·π̄; margin = chosen − rejected; accuracy = chosen > rejected.
// The gradient is returned with respect to the SUMMED log p of each sequence (what LlamaModel.ForwardBackwardSequences
// takes). pairScale = 1 / (pairs in the optimizer step) and tokenScale = 1 / (chosen target tokens in the step) make
// gradient accumulation give the gradient of the step's mean loss. Everything is double.
namespace LoraSharp.Training.Preference;

/// <summary>Which preference loss.</summary>
public enum PreferenceObjective
{
    /// <summary>DPO with the sigmoid (Bradley-Terry) loss.</summary>
    DpoSigmoid,
    /// <summary>DPO with the IPO loss.</summary>
    DpoIpo,
    /// <summary>ORPO (odds-ratio preference optimisation, no reference model).</summary>
    Orpo,
}

/// <summary>Sums over pairs of one micro-batch (divide by the pair count for means).</summary>
public sealed class PreferenceSums
{
    /// <summary>Σ per-pair loss (ORPO: including its NLL part, per pair).</summary>
    public double Loss;
    /// <summary>Σ chosen reward.</summary>
    public double RewardChosen;
    /// <summary>Σ rejected reward.</summary>
    public double RewardRejected;
    /// <summary>Σ [chosen reward > rejected reward].</summary>
    public double Correct;
    /// <summary>Pairs summed.</summary>
    public int Pairs;

    /// <summary>Adds another micro-batch's sums.</summary>
    public void Add(PreferenceSums o)
    {
        Loss += o.Loss; RewardChosen += o.RewardChosen; RewardRejected += o.RewardRejected; Correct += o.Correct; Pairs += o.Pairs;
    }
}

/// <summary>Preference losses and their gradients with respect to summed sequence log-probabilities.</summary>
public static class PreferenceLoss
{
    /// <summary>Parses objective + dpo_loss: ("dpo", "sigmoid"|"ipo") or ("orpo", _).</summary>
    public static PreferenceObjective Parse(string objective, string dpoLoss) => (objective, dpoLoss) switch
    {
        ("dpo", "sigmoid") => PreferenceObjective.DpoSigmoid,
        ("dpo", "ipo") => PreferenceObjective.DpoIpo,
        ("orpo", _) => PreferenceObjective.Orpo,
        _ => throw new ArgumentException($"objective '{objective}' with dpo_loss '{dpoLoss}' is not a preference loss (dpo with sigmoid or ipo, or orpo)."),
    };

    /// <summary>
    /// Losses of <paramref name="policyChosen"/>.Length pairs; writes dL/d(summed log p) of every chosen and rejected
    /// sequence (already multiplied by the scales) and returns the sums for logging (unscaled per-pair values).
    /// <paramref name="beta"/> is β for DPO/IPO and λ for ORPO. Reference spans are ignored by ORPO (may be empty).
    /// </summary>
    public static PreferenceSums Compute(PreferenceObjective objective, double beta,
        ReadOnlySpan<double> policyChosen, ReadOnlySpan<double> policyRejected, ReadOnlySpan<double> refChosen, ReadOnlySpan<double> refRejected,
        ReadOnlySpan<int> chosenTokens, ReadOnlySpan<int> rejectedTokens, double pairScale, double tokenScale,
        Span<double> dChosen, Span<double> dRejected)
    {
        int P = policyChosen.Length;
        var sums = new PreferenceSums { Pairs = P };
        for (int i = 0; i < P; i++)
        {
            double nc = Math.Max(1, chosenTokens[i]), nr = Math.Max(1, rejectedTokens[i]);
            double loss, rc, rr;
            switch (objective)
            {
                case PreferenceObjective.DpoSigmoid:
                {
                    double dc = policyChosen[i] - refChosen[i], dr = policyRejected[i] - refRejected[i];
                    double z = beta * (dc - dr);
                    loss = Softplus(-z);
                    double dz = -Sigmoid(-z) * pairScale;
                    dChosen[i] = beta * dz;
                    dRejected[i] = -beta * dz;
                    rc = beta * dc; rr = beta * dr;
                    break;
                }
                case PreferenceObjective.DpoIpo:
                {
                    double dc = (policyChosen[i] - refChosen[i]) / nc, dr = (policyRejected[i] - refRejected[i]) / nr;
                    double h = dc - dr - 1 / (2 * beta);
                    loss = h * h;
                    double dh = 2 * h * pairScale;
                    dChosen[i] = dh / nc;
                    dRejected[i] = -dh / nr;
                    rc = beta * dc; rr = beta * dr;
                    break;
                }
                default:
                {
                    double a = policyChosen[i] / nc, b = policyRejected[i] / nr;
                    // log(1 − eˣ) for x < 0, accurately for x near 0 and very negative x.
                    double lo = (a - b) - (Log1mExp(a) - Log1mExp(b));
                    double nll = -policyChosen[i];   // this pair's part of the step's chosen-token NLL (scaled by tokenScale)
                    loss = -beta * LogSigmoid(lo) + nll * tokenScale / pairScale;
                    double dlo = -beta * Sigmoid(-lo) * pairScale;
                    dChosen[i] = dlo / -double.ExpM1(a) / nc - tokenScale;    // d lo/da = 1/(1 − eᵃ)
                    dRejected[i] = -dlo / -double.ExpM1(b) / nr;
                    rc = beta * a; rr = beta * b;
                    break;
                }
            }
            sums.Loss += loss;
            sums.RewardChosen += rc;
            sums.RewardRejected += rr;
            if (rc > rr) sums.Correct++;
        }
        return sums;
    }

    private static double Sigmoid(double x) => x >= 0 ? 1 / (1 + Math.Exp(-x)) : Math.Exp(x) / (1 + Math.Exp(x));

    private static double Softplus(double x) => x > 0 ? x + Math.Log(1 + Math.Exp(-x)) : Math.Log(1 + Math.Exp(x));

    private static double LogSigmoid(double x) => -Softplus(-x);

    private static double Log1mExp(double x) => x > -0.6931471805599453 ? Math.Log(-double.ExpM1(x)) : Math.Log(1 - Math.Exp(x));
}
