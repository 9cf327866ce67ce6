export * from './dataset';
export * from './fit';
export * from './labels';
export * from './softmax';
