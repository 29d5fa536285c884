// The communicator seam without MPI: a one-process run gets SingleProcess (libmpi is never loaded), whose collectives
// leave the data as it is, and a failure passed to Agree is the failure itself. mpirun runs are in the Cli tests
// (DistributedTrainingTests).
using LoraSharp.Core;
using LoraSharp.Training.Distributed;

namespace LoraSharp.Training.Tests.Distributed;

public sealed class CommunicatorTests
{
    [Fact]
    public void FromEnvironment_WithoutMpirun_IsSingleProcess_AndLoadsNoMpi()
    {
        Assert.Null(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE"));
        var comm = Communicator.FromEnvironment();
        Assert.Same(SingleProcess.Instance, comm);
        Assert.False(Communicator.LaunchedByMpi);
        Assert.DoesNotContain(System.Diagnostics.Process.GetCurrentProcess().Modules.Cast<System.Diagnostics.ProcessModule>(),
            m => m.ModuleName.StartsWith("libmpi", StringComparison.Ordinal));
    }

    [Fact]
    public void SingleProcess_Collectives_LeaveTheValues()
    {
        var comm = SingleProcess.Instance;
        float[] f = [1.5f, -2f];
        double[] d = [3, 4];
        byte[] b = [7, 8];
        comm.AllReduceSum(f);
        comm.AllReduceSum(d);
        comm.AllReduceMax(d);
        comm.Broadcast(b, 0);
        Assert.Equal([1.5f, -2f], f);
        Assert.Equal([3.0, 4.0], d);
        Assert.Equal([(byte)7, (byte)8], b);
        Assert.Equal((0, 1), (comm.Rank, comm.Size));
        Assert.Throws<ArgumentOutOfRangeException>(() => comm.Broadcast(b, 1));
    }

    [Fact]
    public void Agree_OneProcess_RethrowsTheFailure_OrReturns()
    {
        Communicator.Agree(SingleProcess.Instance, null, "here");
        var e = Assert.Throws<UserErrorException>(() => Communicator.Agree(SingleProcess.Instance, new UserErrorException("bad row 3"), "here"));
        Assert.Equal("bad row 3", e.Message);
        Communicator.AgreeSame(SingleProcess.Instance, [1.0, 2.0], "state");
    }

    [Fact]
    public void InjectFault_BadSpec_SaysTheForm()
    {
        Environment.SetEnvironmentVariable("LORASHARP_FAULT", "1:x");
        try
        {
            var e = Assert.Throws<UserErrorException>(() => Communicator.InjectFault(SingleProcess.Instance, 1));
            Assert.Contains("RANK:STEP:throw", e.Message);
        }
        finally
        {
            Environment.SetEnvironmentVariable("LORASHARP_FAULT", null);
        }
    }
}
