// One row of a JSON dataset with where it came from, so that every error can name the row and the line.
using System.Text.Json;

namespace LoraSharp.Training.Data;

/// <summary>A JSON row of a dataset file.</summary>
/// <param name="Number">1-based row number (array element or JSONL record).</param>
/// <param name="Line">1-based line where the row starts.</param>
/// <param name="Value">The row (a JSON object for every dataset kind; other kinds are refused by the builders).</param>
public readonly record struct DatasetRow(int Number, int Line, JsonElement Value);
