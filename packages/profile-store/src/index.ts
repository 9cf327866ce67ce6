export * from './errors';
export * from './fold';
export * from './lifecycle';
export * from './migrate';
export * from './outbox';
export * from './read';
export * from './store';
export * from './tx';
