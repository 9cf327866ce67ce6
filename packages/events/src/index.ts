export * from './fields';
export * from './identity';
export * from './message';
