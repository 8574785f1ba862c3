#!/usr/bin/env bash
# NativeAOT executables without weights, one per model of AotSize.csproj: their sizes, the time to build each
# (the generator and the C# compiler: `dotnet build`), the time ILC takes (`dotnet publish` after the build), and,
# under the JIT (the build's own dll), the time from process start to the end of one training step.
#   bench/AotSize/measure.sh [None SmolLM2 Layers2 Layers12 Layers24 Layers48]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
variants=("$@")
[ ${#variants[@]} -eq 0 ] && variants=(None SmolLM2 Layers2 Layers12 Layers24 Layers48)
out="$here/../../out/aot-size"
mkdir -p "$out"
dotnet build "$here/../../src/Runtime" -c Release -v q -nologo > /dev/null   # shared by every variant: not timed
printf '%-10s %14s %10s %10s  %s | %s\n' model "binary bytes" "build s" "publish s" "native run" "JIT: one training step"
for v in "${variants[@]}"; do
  rm -rf "$here/obj" "$here/bin" "$out/$v"   # nothing of the previous variant is reused
  t0=$(date +%s.%N)
  dotnet build "$here/AotSize.csproj" -c Release -p:AotModel="$v" -v q -nologo > "$out.$v.build.log" 2>&1 || { cat "$out.$v.build.log"; exit 1; }
  t1=$(date +%s.%N)
  dotnet publish "$here/AotSize.csproj" -c Release -p:AotModel="$v" --no-build -o "$out/$v" -v q -nologo > "$out.$v.publish.log" 2>&1 || { cat "$out.$v.publish.log"; exit 1; }
  t2=$(date +%s.%N)
  size=$(stat -c %s "$out/$v/AotSize")
  run=$("$out/$v/AotSize")
  train="-"
  if [ "$v" != None ]; then
    rm -rf "$here/obj" "$here/bin"
    dotnet build "$here/AotSize.csproj" -c Release -p:AotModel="$v" -p:AotTrain=true -v q -nologo > "$out.$v.train.log" 2>&1 || { cat "$out.$v.train.log"; exit 1; }
    train=$(dotnet "$here/bin/Release/net10.0/AotSize.dll" train)
  fi
  printf '%-10s %14s %10.1f %10.1f  %s | %s\n' "$v" "$size" "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "$run" "$train"
done
