// The training loop: micro-batches accumulated into optimizer steps (the loss normalised by the target tokens of
// the whole step, so micro 8 x 1 and 2 x 4 give the same update), global-norm clipping, the learning-rate schedule,
// periodic evaluation and checkpoints, stop-at-loss, early stopping, NaN detection and cancellation after a step.
// Everything random is derived from (seed, step), so a resumed run repeats an uninterrupted one exactly.
// Preference objectives (dpo, orpo) run through Preference.PreferenceRun instead of the token Batcher; the loop is shared.
// Not here: building datasets, attaching adapters, writing the final adapter (the App's FineTuneJob does those).
using System.Diagnostics;
using LoraSharp.Core.Optim;
using LoraSharp.Models.Llama;
using LoraSharp.Training.Data;
using LoraSharp.Training.Preference;
using LoraSharp.Training.Schedules;

namespace LoraSharp.Training;

/// <summary>Runs optimizer steps over a dataset.</summary>
public sealed partial class Trainer
{
    private readonly LlamaModel _model;
    private readonly TrainingSettings _s;
    private readonly IReadOnlyList<TrainingSample>? _eval;
    private readonly Batcher? _batcher;
    private readonly PreferenceRun? _pref;
    private readonly IReadOnlyList<Parameter> _parameters;
    private readonly int _padId;

    /// <summary>Prepares a run; trainable parameters must already exist on <paramref name="model"/>.</summary>
    public Trainer(LlamaModel model, TrainingSettings settings, IReadOnlyList<TrainingSample> train, IReadOnlyList<TrainingSample>? eval, int padId)
        : this(model, settings, train, eval, padId, null)
    {
    }

    /// <summary>Prepares a preference run (settings.objective dpo or orpo) over pairs.</summary>
    public Trainer(LlamaModel model, TrainingSettings settings, PreferenceSet train, PreferenceSet? eval)
        : this(model, settings, null, null, 0, new PreferenceRun(train, eval, settings))
    {
    }

    private Trainer(LlamaModel model, TrainingSettings settings, IReadOnlyList<TrainingSample>? train, IReadOnlyList<TrainingSample>? eval, int padId, PreferenceRun? pref)
    {
        settings.Validate();
        if ((pref != null) != (settings.Objective != "sft"))
            throw new ArgumentException($"objective {settings.Objective}: " + (pref == null ? "give preference pairs (PreferenceSet), not token samples." : "preference pairs need objective dpo or orpo."));
        _model = model;
        _s = settings;
        _eval = eval is { Count: > 0 } ? eval : null;
        _padId = padId;
        if (settings.CutoffLen > model.Config.MaxPositionEmbeddings)
            throw new Core.UserErrorException($"cutoff_len {settings.CutoffLen} is longer than the model's context of {model.Config.MaxPositionEmbeddings} (max_position_embeddings); lower cutoff_len.");
        // Packed micro-batches: the same samples, loss and gradients as padded ones, without computing pad tokens.
        _pref = pref;
        if (pref == null) _batcher = new Batcher(train!, settings.MicroBatchSize, settings.CutoffLen, padId, (ulong)settings.Seed, pack: true);
        _parameters = model.TrainableParameters();
        if (_parameters.Count == 0) throw new Core.UserErrorException("The model has no trainable parameters: attach a LoRA adapter or enable full fine-tuning.");
        // LoRA+ (Hayou et al. 2024) as PEFT's create_loraplus_optimizer groups it: lora_B and 1-D parameters (DoRA
        // magnitudes) learn at loraplus_lr_ratio × the learning rate, everything else at the learning rate.
        if (settings.LoraplusLrRatio > 0)
            foreach (var p in _parameters)
                if (p.Name.Contains(".lora_B.", StringComparison.Ordinal) || p.Shape.Length == 1) p.LearningRateScale = settings.LoraplusLrRatio;
        model.NeftuneNoiseAlpha = settings.NeftuneNoiseAlpha;
        Optimizer = OptimizerFactory.Create(settings.Optimizer, new OptimizerOptions
        {
            WeightDecay = settings.WeightDecay, Momentum = settings.Momentum, Nesterov = settings.Nesterov,
            Beta1 = settings.Optimizer.Trim().Equals("adafactor", StringComparison.OrdinalIgnoreCase) ? null : settings.AdamBeta1,   // HF never gives Adafactor adam_beta1
            Beta2 = settings.AdamBeta2, SophiaRho = settings.SophiaRho,
        });
        int accumulation = settings.GradientAccumulationSteps;
        StepsPerEpoch = Math.Max(1, (int)Math.Ceiling((_batcher?.StepsPerEpoch ?? _pref!.MicroBatchesPerEpoch) / (double)accumulation));
        TotalSteps = settings.MaxSteps > 0 ? settings.MaxSteps : Math.Max(1, (int)Math.Ceiling(settings.Epochs * StepsPerEpoch));
        int warmup = settings.ResolveWarmupSteps(TotalSteps);
        Schedule = LearningRateSchedule.Create(settings.LrSchedulerType, settings.LearningRate, warmup, TotalSteps);
    }

    /// <summary>The optimizer (its state is checkpointed).</summary>
    public Optimizer Optimizer { get; }

    /// <summary>The learning-rate schedule.</summary>
    public LearningRateSchedule Schedule { get; }

    /// <summary>Optimizer steps per epoch.</summary>
    public int StepsPerEpoch { get; }

    /// <summary>Optimizer steps of the whole run.</summary>
    public int TotalSteps { get; }

    /// <summary>The trainable parameters.</summary>
    public IReadOnlyList<Parameter> Parameters => _parameters;

    /// <summary>Optimizer steps done so far.</summary>
    public int Step { get; private set; }

    /// <summary>Best validation loss so far.</summary>
    public double? BestEvalLoss { get; private set; }

    /// <summary>Evaluations in a row without improvement.</summary>
    public int EvalsWithoutImprovement { get; private set; }

    /// <summary>Every step so far (restored on resume).</summary>
    public List<StepRecord> History { get; } = [];

    /// <summary>Called after each step.</summary>
    public event Action<StepRecord>? StepCompleted;

    /// <summary>Called when a checkpoint is due, with the step number (the caller writes it).</summary>
    public event Action<int>? CheckpointDue;

    /// <summary>Where the data stands (for checkpoints).</summary>
    public DataPosition DataPosition => _batcher?.Position ?? _pref!.Position;

    /// <summary>The preference part of a dpo/orpo run (null for sft).</summary>
    public PreferenceRun? Preference => _pref;

    /// <summary>Metrics of the last preference evaluation (null for sft or before one).</summary>
    public PreferenceMetrics? LastPreferenceEval { get; private set; }

    /// <summary>Restores loop state from a checkpoint (parameters and optimizer state are restored by the caller).</summary>
    public void Restore(int step, DataPosition position, double? bestEvalLoss, int evalsWithoutImprovement, IEnumerable<StepRecord> history)
    {
        Step = step;
        _batcher?.Restore(position);
        _pref?.Restore(position);
        BestEvalLoss = bestEvalLoss;
        EvalsWithoutImprovement = evalsWithoutImprovement;
        History.Clear();
        History.AddRange(history);
    }

    /// <summary>Mean loss over the validation samples (token-weighted), or null without a validation set.</summary>
    public double? Evaluate()
    {
        if (_pref != null)
        {
            LastPreferenceEval = _pref.Evaluate(_model);
            return LastPreferenceEval?.Loss;
        }
        if (_eval == null) return null;
        if (_comm.Size > 1) return EvaluateDistributed();
        var batcher = new Batcher(_eval, _s.MicroBatchSize, _s.CutoffLen, _padId, 0, shuffle: false, pack: true);
        double sum = 0;
        long count = 0;
        foreach (var batch in batcher.EpochBatches())
        {
            var losses = _model.PositionLosses(batch, out int n);
            foreach (var l in losses) sum += l;
            count += n;
        }
        return count == 0 ? null : sum / count;
    }

    /// <summary>Runs until the last step, a stop condition, or cancellation (which finishes the current step first).</summary>
    public TrainingOutcome Run(CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        double elapsedBefore = History.Count > 0 ? History[^1].ElapsedSeconds : 0;
        int startStep = Step;
        long tokens = 0;
        int accumulation = _s.GradientAccumulationSteps;
        string reason = "completed";
        double lastLoss = History.Count > 0 ? History[^1].Loss : double.NaN;
        double? lastEval = History.LastOrDefault(h => h.EvalLoss != null)?.EvalLoss;
        var micro = new List<Batch>(accumulation);

        bool distributed = _comm.Size > 1;
        if (distributed) CheckRanksAgree();
        while (Step < TotalSteps)
        {
            if (!distributed && cancel.IsCancellationRequested) { reason = "interrupted"; break; }
            bool interruptAll = false;   // distributed: a rank was asked to stop; all stop after this step
            Optimizer.ZeroGrad(_parameters);
            double loss;
            PreferenceMetrics? pm = null;
            if (_pref != null)
            {
                int step = Step;
                pm = _pref.Step(_model, accumulation, i => Mix((ulong)_s.Seed, (ulong)step, (ulong)i), out long stepTokens);
                tokens += stepTokens;
                loss = pm.Loss;
            }
            else
            {
                micro.Clear();
                int targets = 0;
                for (int i = 0; i < accumulation; i++)
                {
                    var b = _batcher!.NextBatch();
                    micro.Add(b);
                    targets += b.TargetCount;
                }
                double lossSum = 0;
                float scale = targets > 0 ? 1f / targets : 0f;
                if (distributed)
                {
                    lossSum = DistributedMicroBatches(micro, scale, cancel, out interruptAll);
                    foreach (var b in micro) tokens += b.B * b.T;
                }
                else for (int i = 0; i < micro.Count; i++)
                {
                    ulong dropoutSeed = Mix((ulong)_s.Seed, (ulong)Step, (ulong)i);
                    lossSum += _model.ForwardBackward(micro[i], scale, dropoutSeed, out _);
                    tokens += micro[i].B * micro[i].T;   // packed: real tokens only
                }
                loss = targets > 0 ? lossSum / targets : double.NaN;
            }
            if (!double.IsFinite(loss))
                throw new TrainingDivergedException(Step + 1, loss, _s.LearningRate);

            double gradNorm = _s.MaxGradNorm > 0 ? GradientClipping.ClipByGlobalNorm(_parameters, _s.MaxGradNorm) : GradientClipping.GlobalNorm(_parameters);
            if (!double.IsFinite(gradNorm)) throw new TrainingDivergedException(Step + 1, gradNorm, _s.LearningRate, "gradient norm");
            double lr = Schedule.At(Step);
            Optimizer.Step(_parameters, lr);
            if (_s.FullFineTuning || _model.ModulesToSave.Count > 0) _model.RepackTrainable();
            Step++;
            if (Optimizer is Sophia sophia && _pref == null && Step % _s.HessianUpdateInterval == 0)
                SophiaHessian.Update(_model, sophia, _parameters, micro[0], Mix((ulong)_s.Seed, (ulong)Step, 0x50F1AUL));   // Sophia-G's GNB estimate
            lastLoss = loss;

            double? eval = null;
            bool evalDue = (_eval != null || _pref is { HasEval: true }) && ((_s.EvalSteps > 0 && Step % _s.EvalSteps == 0) || Step == TotalSteps);
            if (evalDue)
            {
                eval = Evaluate();
                lastEval = eval;
                if (eval is { } e)
                {
                    if (BestEvalLoss is not { } best || e < best) { BestEvalLoss = e; EvalsWithoutImprovement = 0; }
                    else EvalsWithoutImprovement++;
                }
            }
            double elapsed = elapsedBefore + clock.Elapsed.TotalSeconds;
            double perStep = clock.Elapsed.TotalSeconds / Math.Max(1, Step - startStep);
            var record = new StepRecord(Step, TotalSteps, Step / (double)StepsPerEpoch, loss, eval, lr, gradNorm,
                tokens / Math.Max(clock.Elapsed.TotalSeconds, 1e-9), elapsed, perStep * (TotalSteps - Step),
                pm?.RewardsChosen, pm?.RewardsRejected, pm?.RewardsMargins, pm?.RewardsAccuracies,
                evalDue ? LastPreferenceEval?.RewardsMargins : null, evalDue ? LastPreferenceEval?.RewardsAccuracies : null);
            History.Add(record);
            StepCompleted?.Invoke(record);

            if (_s.SaveSteps > 0 && Step % _s.SaveSteps == 0 && Step < TotalSteps) CheckpointDue?.Invoke(Step);
            if (_s.StopAtLoss > 0 && loss <= _s.StopAtLoss) { reason = "stop_at_loss"; break; }
            if (_s.EarlyStoppingPatience > 0 && EvalsWithoutImprovement >= _s.EarlyStoppingPatience) { reason = "early_stopping"; break; }
            if (interruptAll) { reason = "interrupted"; break; }
        }
        return new TrainingOutcome(reason, Step, TotalSteps, lastLoss, lastEval, BestEvalLoss, tokens, elapsedBefore + clock.Elapsed.TotalSeconds);
    }

    // SplitMix64 of (seed, step, micro-batch): the dropout stream of one micro-batch.
    private static ulong Mix(ulong seed, ulong step, ulong micro)
    {
        ulong z = seed * 0x9E3779B97F4A7C15UL + step * 0xD1B54A32D192ED03UL + micro * 0xABC98388FB8FAC03UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

/// <summary>The loss or gradient became NaN or infinite: training stops at once.</summary>
public sealed class TrainingDivergedException(int step, double value, double learningRate, string what = "loss")
    : Core.UserErrorException($"Training diverged at step {step}: the {what} is {value}. The learning rate {learningRate} is probably too high; " +
                "lower learning_rate (or raise warmup_steps) and resume from the last checkpoint.")
{
    /// <summary>The step that failed.</summary>
    public int Step { get; } = step;
}
