#!/usr/bin/env bash
# psaq --help lists every subcommand; every `psaq <sub> --help` succeeds and shows each flag
# defined in launch/cmd_<sub>.cc; --version works; an unknown subcommand is one line and status 2.
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"

run help "$PSAQ" --help
[ "$RC" -eq 0 ] || fail "psaq --help exited $RC"
subs=$(awk '/^Subcommands:/{on=1; next} on && /^  [a-z]/{print $1} on && /^$/{exit}' "$WORK/help.out")
[ -n "$subs" ] || fail "psaq --help lists no subcommand"

for sub in $subs; do
  run "help_$sub" "$PSAQ" "$sub" --help
  [ "$RC" -eq 0 ] || fail "psaq $sub --help exited $RC"
  expect_in "help_$sub" out "psaq $sub:"
  src="$PSAQ_SOURCE_DIR/launch/cmd_${sub//-/_}.cc"  # make-scenes: cmd_make_scenes.cc
  [ -f "$src" ] || fail "no $src for subcommand $sub"
  for flag in $(grep -oE 'DEFINE_[a-z0-9]+\(([a-z0-9_]+)' "$src" | sed -E 's/.*\(//'); do
    expect_in "help_$sub" out "--$flag="
  done
done
# Flags shared with eval appear in its help too.
for flag in model dataset batch_size device on_bad_image; do expect_in help_eval out "--$flag="; done

run bare "$PSAQ"
[ "$RC" -eq 2 ] || fail "psaq without a subcommand exited $RC, expected 2"
expect_in bare err "Subcommands:"

run version "$PSAQ" --version
[ "$RC" -eq 0 ] || fail "psaq --version exited $RC"
expect_in version out "psaq "

run unknown "$PSAQ" frobnicate
[ "$RC" -eq 2 ] || fail "unknown subcommand exited $RC, expected 2"
[ "$(wc -l <"$WORK/unknown.err")" -eq 1 ] || fail "unknown subcommand: not one line"
expect_in unknown err "unknown subcommand 'frobnicate'"
finish
