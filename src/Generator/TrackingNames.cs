namespace TransformerGen.Generator
{
    /// <summary>Names of the pipeline's steps, so tests can check what the incremental driver cached.</summary>
    internal static class TrackingNames
    {
        public const string Parse = nameof(Parse);
        public const string Configs = nameof(Configs);
        public const string ApplyConfig = nameof(ApplyConfig);
        public const string Validate = nameof(Validate);
        public const string Checkpoints = nameof(Checkpoints);
        public const string MatchWeights = nameof(MatchWeights);
        public const string SegmentLimit = nameof(SegmentLimit);
        public const string Compile = nameof(Compile);
    }
}
