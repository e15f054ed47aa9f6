/**
 * Where a fetched resource stands: not asked yet, first load in flight,
 * received (possibly being fetched again), or failed with a message meant for
 * the researcher.
 */
export type LoadState<T> =
  | { readonly kind: 'idle' }
  | { readonly kind: 'loading' }
  | { readonly kind: 'ready'; readonly value: T; readonly refreshing: boolean }
  | { readonly kind: 'error'; readonly message: string };

/**
 * The state to show while fetching again: the old value stays on screen.
 *
 * @param state The current state
 * @returns `ready` with `refreshing` set, or `loading`
 */
export function reloading<T>(state: LoadState<T>): LoadState<T> {
  return state.kind === 'ready'
    ? { kind: 'ready', value: state.value, refreshing: true }
    : { kind: 'loading' };
}

/**
 * The value of a state, if it holds one.
 */
export function valueOf<T>(state: LoadState<T>): T | undefined {
  return state.kind === 'ready' ? state.value : undefined;
}
