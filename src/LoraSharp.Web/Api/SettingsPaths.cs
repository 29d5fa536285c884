// Training settings cross the browser boundary with names, not paths: on the way in every dataset name is resolved
// inside the datasets folder and the format name to its file in formats/; on the way out (copying an earlier
// adapter's settings into the form) paths become names again, and paths outside the folders are dropped.
using LoraSharp.Training;
using LoraSharp.Web.Library;

namespace LoraSharp.Web.Api;

/// <summary>Maps the file settings between names and server paths.</summary>
internal static class SettingsPaths
{
    public static TrainingSettings ToServer(TrainingSettings s, WebFolders folders) => s with
    {
        Dataset = Resolve(s.Dataset, folders.Datasets),
        EvalDataset = Resolve(s.EvalDataset, folders.Datasets),
        RawTextFile = Resolve(s.RawTextFile, folders.Datasets),
        Format = string.IsNullOrEmpty(s.Format) ? null : s.Format == "chat" ? "chat" : folders.FormatFile(s.Format),
    };

    public static TrainingSettings ToClient(TrainingSettings s, WebFolders folders) => s with
    {
        Dataset = folders.Datasets.Name(s.Dataset),
        EvalDataset = folders.Datasets.Name(s.EvalDataset),
        RawTextFile = folders.Datasets.Name(s.RawTextFile),
        Format = folders.FormatName(s.Format),
    };

    private static string? Resolve(string? name, WebFolder folder) => string.IsNullOrEmpty(name) ? null : folder.Resolve(name);
}
