export * from './decay';
export * from './model';
export * from './tags';
export * from './weights';
export * from './timeline';
