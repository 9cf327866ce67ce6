export * from './envelope';
export * from './normalize';
export * from './segment';
export * from './traits';
