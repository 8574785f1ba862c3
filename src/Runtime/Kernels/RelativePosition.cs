using System;

namespace TransformerGen.Kernels;

/// <summary>
/// T5's relative-position bias (Raffel et al. 2020, §2.1; transformers' <c>T5Attention</c>): each head learns one scalar
/// per bucket of key-minus-query distances, in a table <c>[buckets, heads]</c> (<c>relative_attention_bias</c>), that is
/// added to the scores of every layer of a stack (only the first layer holds the table). Distances up to half the
/// buckets (a quarter each way when bidirectional) get a bucket each; longer ones share logarithmically wider buckets up
/// to <c>maxDistance</c>, beyond which all fall in the last.
/// </summary>
/// <remarks>
/// The attention kernels take the bias as rows of <c>2·span − 1</c> floats per head (distances −(span − 1) … span − 1),
/// as <see cref="Attention.Forward(ReadOnlySpan{float}, int, ReadOnlySpan{float}, ReadOnlySpan{float}, int, ReadOnlySpan{byte}, Span{float}, Span{float}, int, int, int, int, int, bool, int, int, float, ReadOnlySpan{float}, int)"/>
/// documents: <see cref="BiasForward"/> gathers the rows from the table for every forward pass (the table changes as it
/// trains; the 2·span − 1 buckets cost one logarithm each, nothing beside the layers' products), and
/// <see cref="BiasBackward"/> adds the rows' gradients back into the table's. <see cref="Buckets"/> lists the buckets.
/// </remarks>
public static class RelativePosition
{
    /// <summary>
    /// The bucket of the distance <paramref name="relativePosition"/> = key position − query position, as transformers'
    /// <c>T5Attention._relative_position_bucket</c> computes it: bidirectional (an encoder's), the first half of the buckets
    /// for keys at or before the query and the second for keys after it; otherwise (a decoder's) keys after the query share
    /// bucket 0. Of each half's buckets, the first half are exact distances and the rest logarithmic up to
    /// <paramref name="maxDistance"/>. The logarithm is taken in single precision, as libtorch takes it on a float tensor.
    /// </summary>
    public static int Bucket(int relativePosition, bool bidirectional, int buckets, int maxDistance)
    {
        int bucket = 0;
        long distance = relativePosition; // long: −int.MinValue does not fit an int
        if (bidirectional)
        {
            buckets /= 2;
            if (distance > 0) bucket += buckets;
            distance = Math.Abs(distance);
        }
        else
        {
            distance = -Math.Min(distance, 0);
        }
        int maxExact = buckets / 2;
        if (distance < maxExact) return bucket + (int)distance;
        // max_exact + log(d / max_exact) / log(max_distance / max_exact) · (buckets − max_exact), truncated, at most buckets − 1.
        float ratio = (float)distance / maxExact;
        float logScale = (float)Math.Log(maxDistance / (double)maxExact);
        float large = MathF.Log(ratio) / logScale * (buckets - maxExact);
        return bucket + (int)Math.Min(maxExact + (long)large, buckets - 1);
    }

    /// <summary>
    /// The bucket of every distance −(span − 1) … span − 1, at index <c>span − 1 + distance</c>: what the attention of
    /// sequences of up to <paramref name="span"/> positions looks up.
    /// </summary>
    /// <param name="buckets">Output, <c>2·span − 1</c> entries.</param>
    /// <param name="span">Longest sequence.</param>
    /// <param name="bidirectional">An encoder's buckets (keys after the query distinguished) rather than a decoder's.</param>
    /// <param name="bucketCount">The table's buckets (<c>relative_attention_num_buckets</c>).</param>
    /// <param name="maxDistance">The distance from which all share the last bucket (<c>relative_attention_max_distance</c>).</param>
    public static void Buckets(Span<int> buckets, int span, bool bidirectional, int bucketCount, int maxDistance)
    {
        SpanChecks.Positive(span, nameof(span));
        CheckTable(bidirectional, bucketCount, maxDistance);
        SpanChecks.Length(buckets.Length, 2L * span - 1, nameof(buckets));
        for (int i = 0; i < buckets.Length; i++) buckets[i] = Bucket(i - (span - 1), bidirectional, bucketCount, maxDistance);
    }

    /// <summary>
    /// The bias rows the attention kernels read, <paramref name="copies"/> identical blocks <c>[heads, 2·span − 1]</c> (one
    /// per sequence of a training batch, so that each sequence's gradient has rows of its own): entry
    /// <c>[s, h, span − 1 + distance]</c> = <c>table[Bucket(distance), h]</c>. Overwrites <paramref name="bias"/>.
    /// </summary>
    /// <param name="table">The learned table <c>[bucketCount, heads]</c>.</param>
    /// <param name="bias">Output <c>[copies, heads, 2·span − 1]</c>.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="span">Longest sequence the rows serve.</param>
    /// <param name="bidirectional">An encoder's buckets rather than a decoder's (see <see cref="Bucket"/>).</param>
    /// <param name="bucketCount">The table's rows (<c>relative_attention_num_buckets</c>).</param>
    /// <param name="maxDistance"><c>relative_attention_max_distance</c>.</param>
    /// <param name="copies">Sequences.</param>
    public static void BiasForward(ReadOnlySpan<float> table, Span<float> bias, int heads, int span, bool bidirectional, int bucketCount, int maxDistance, int copies = 1)
    {
        int length = CheckRows(table.Length, bias.Length, heads, span, bidirectional, bucketCount, maxDistance, copies, nameof(table), nameof(bias));
        for (int d = 0; d < length; d++)
        {
            int row = Bucket(d - (span - 1), bidirectional, bucketCount, maxDistance) * heads;
            for (int h = 0; h < heads; h++) bias[h * length + d] = table[row + h];
        }
        Span<float> first = bias[..(heads * length)];
        for (int s = 1; s < copies; s++) first.CopyTo(bias.Slice(s * heads * length));
    }

    /// <summary>
    /// Adds the bias rows' gradient into the table's: <c>dTable[Bucket(distance), h] += Σ_s dBias[s, h, span − 1 + distance]</c>,
    /// summed over the sequences, then the distances, in order (the same bits for any thread count of the kernels that
    /// produced them).
    /// </summary>
    /// <param name="dBias">Gradient of <see cref="BiasForward"/>'s output <c>[copies, heads, 2·span − 1]</c>.</param>
    /// <param name="dTable">Gradient of the table <c>[bucketCount, heads]</c>, added into.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="span">As given to forward.</param>
    /// <param name="bidirectional">As given to forward.</param>
    /// <param name="bucketCount">As given to forward.</param>
    /// <param name="maxDistance">As given to forward.</param>
    /// <param name="copies">As given to forward.</param>
    public static void BiasBackward(ReadOnlySpan<float> dBias, Span<float> dTable, int heads, int span, bool bidirectional, int bucketCount, int maxDistance, int copies = 1)
    {
        int length = CheckRows(dTable.Length, dBias.Length, heads, span, bidirectional, bucketCount, maxDistance, copies, nameof(dTable), nameof(dBias));
        for (int d = 0; d < length; d++)
        {
            int row = Bucket(d - (span - 1), bidirectional, bucketCount, maxDistance) * heads;
            for (int h = 0; h < heads; h++)
            {
                float sum = 0f;
                for (int s = 0; s < copies; s++) sum += dBias[(s * heads + h) * length + d];
                dTable[row + h] += sum;
            }
        }
    }

    /// <summary>Checks the sizes of the table and of the rows; returns the rows' length 2·span − 1.</summary>
    private static int CheckRows(int tableLength, int rowsLength, int heads, int span, bool bidirectional, int bucketCount, int maxDistance, int copies,
        string tableName, string rowsName)
    {
        SpanChecks.Positive(heads, nameof(heads));
        SpanChecks.Positive(span, nameof(span));
        SpanChecks.Positive(copies, nameof(copies));
        CheckTable(bidirectional, bucketCount, maxDistance);
        SpanChecks.Length(tableLength, (long)bucketCount * heads, tableName);
        SpanChecks.Length(rowsLength, (long)copies * heads * (2L * span - 1), rowsName);
        return 2 * span - 1;
    }

    private static void CheckTable(bool bidirectional, int bucketCount, int maxDistance)
    {
        // Each half (or the whole, one way) needs at least two buckets: one exact distance and one logarithmic range,
        // whose logarithm's base log(maxDistance / maxExact) must be positive.
        int half = bidirectional ? bucketCount / 2 : bucketCount;
        if (half < 2)
            throw new ArgumentOutOfRangeException(nameof(bucketCount), bucketCount, $"{bucketCount} buckets leave fewer than 2 for each direction.");
        if (maxDistance <= half / 2)
            throw new ArgumentOutOfRangeException(nameof(maxDistance), maxDistance, $"maxDistance = {maxDistance} must exceed the {half / 2} exactly bucketed distances.");
    }
}
