#!/bin/bash
# Sourced by the *_before_after.sh scripts: `older_commit <commit>` checks that commit out in a temporary worktree,
# $worktree, whose own package and configs a run there uses, and removes it when the script exits, with any paths the
# script adds to $remove_on_exit. $here is this checkout.
here=$(git rev-parse --show-toplevel)
remove_on_exit=()
older_commit() {
  worktree=$(mktemp -d)
  trap 'git -C "$here" worktree remove --force "$worktree"; rm -rf "${remove_on_exit[@]}"' EXIT
  git -C "$here" worktree add --detach --quiet "$worktree" "$1"
  # The package finds its configs as fer_lightning.conf, which the editable install maps to this checkout's conf/;
  # a link inside the older package makes it find its own first.
  ln -s ../conf "$worktree/fer_lightning/conf"
}
