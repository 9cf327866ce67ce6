export * from './errors';
export * from './fold';
export * from './lifecycle';
export * from './migrate';
export * from './read';
export * from './store';
export * from './tx';
